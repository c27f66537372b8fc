package mailbox_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/arena-game/arena/internal/mailbox"
)

type join struct{ name string }
type leave struct{ name string }

// An owner goroutine selects on its mailbox; a join that finds the mailbox
// full is refused, and the leave reserved at admission always arrives.
func Example() {
	inbox := mailbox.New[any](16, mailbox.Reject)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { // the owner
		defer close(done)
		defer inbox.Close()
		var msgs []any
		members := map[string]bool{}
		for {
			select {
			case <-ctx.Done():
				return
			case <-inbox.Ready():
				msgs = inbox.Take(msgs)
				for _, m := range msgs {
					switch m := m.(type) {
					case join:
						members[m.name] = true
					case leave:
						delete(members, m.name)
						fmt.Println("members left:", len(members))
						cancel()
					}
				}
			}
		}
	}()
	bye := inbox.Reserve() // taken when the player is admitted
	if err := inbox.Post(join{"ada"}); errors.Is(err, mailbox.ErrFull) {
		fmt.Println("busy: try again")
		return
	}
	_ = bye.Post(leave{"ada"})
	<-done
	fmt.Println(inbox.Post(join{"bob"}))
	// Output:
	// members left: 0
	// mailbox closed
}
