package matchmaking

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrBadProposal: a match function answered a proposal that breaks its
// contract; the whole answer of that call is rejected.
var ErrBadProposal = errors.New("bad proposal")

// Reasons a function's answer is rejected (the reason label of
// arena_mm_function_rejected_total).
const (
	RejectDuplicate = "duplicate_ticket"
	RejectUnknown   = "unknown_ticket"
	RejectSize      = "wrong_room_size"
	RejectScore     = "bad_score"
	RejectError     = "error"
)

// ProposalError is why a function's answer was rejected.
type ProposalError struct {
	Reason string // one of the Reject constants
	Detail string
}

func (e *ProposalError) Error() string {
	return fmt.Sprintf("validate proposals: %s: %s", e.Reason, e.Detail)
}

// Unwrap makes errors.Is(err, ErrBadProposal) true.
func (e *ProposalError) Unwrap() error { return ErrBadProposal }

// ValidateProposals checks one call's answer against its request: every
// ticket among the candidates, none twice (within a proposal or across
// them), as many rosters as the profile has, no roster over its size, the
// room's players within the profile's MinPlayers..MaxPlayers, finite
// scores. members returns a candidate's player count (false: unknown).
func ValidateProposals(p *Profile, props []Proposal, members func(id string) (int, bool)) error {
	seen := map[string]bool{}
	for i, pr := range props {
		if math.IsNaN(pr.Score) || math.IsInf(pr.Score, 0) {
			return &ProposalError{RejectScore, fmt.Sprintf("proposal %d: score %v", i, pr.Score)}
		}
		if len(pr.Rosters) != len(p.Rosters) {
			return &ProposalError{RejectSize, fmt.Sprintf("proposal %d: %d rosters, the profile has %d", i, len(pr.Rosters), len(p.Rosters))}
		}
		total := 0
		for r, ids := range pr.Rosters {
			n := 0
			for _, id := range ids {
				m, ok := members(id)
				if !ok {
					return &ProposalError{RejectUnknown, fmt.Sprintf("proposal %d: ticket %q is not a candidate", i, id)}
				}
				if seen[id] {
					return &ProposalError{RejectDuplicate, fmt.Sprintf("proposal %d: ticket %q proposed twice", i, id)}
				}
				seen[id] = true
				n += m
			}
			if n > p.Rosters[r].Size {
				return &ProposalError{RejectSize, fmt.Sprintf("proposal %d: roster %q has %d players, size %d", i, p.Rosters[r].Name, n, p.Rosters[r].Size)}
			}
			total += n
		}
		if total < p.MinPlayers || total > p.MaxPlayers {
			return &ProposalError{RejectSize, fmt.Sprintf("proposal %d: %d players, want %d..%d", i, total, p.MinPlayers, p.MaxPlayers)}
		}
	}
	return nil
}

// proposal is a function's proposal with where it came from and its
// tickets, for the evaluator.
type proposal struct {
	Proposal
	// profile, source and index order proposals of equal score: the
	// profile's place in the file, the pool's (or function call's) place in
	// the profile, the proposal's place in its answer.
	profile, source, index int
	tickets                []*ticket // every ticket of every roster
}

// evaluate picks, among proposals that may share tickets, the ones that
// become rooms: highest score first (ties by profile, source, index, so
// the choice is deterministic), each kept only when all its tickets still
// wait and none is in a proposal kept before it. It returns the kept ones
// in that order and the rest; a ticket is never in two kept proposals.
// serial must differ from every earlier call's (it marks taken tickets).
func evaluate(props []*proposal, serial uint64) (kept, lost []*proposal) {
	slices.SortStableFunc(props, func(a, b *proposal) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		if c := cmp.Compare(a.profile, b.profile); c != 0 {
			return c
		}
		if c := cmp.Compare(a.source, b.source); c != 0 {
			return c
		}
		return cmp.Compare(a.index, b.index)
	})
	kept = make([]*proposal, 0, len(props))
	for _, pr := range props {
		ok := true
		for _, t := range pr.tickets {
			if t.mark == serial || !t.waiting {
				ok = false
				break
			}
		}
		if !ok {
			lost = append(lost, pr)
			continue
		}
		for _, t := range pr.tickets {
			t.mark = serial
		}
		kept = append(kept, pr)
	}
	return kept, lost
}
