package dispatcher

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/arena-game/arena/matchmaking"
)

// profileRoutes registers the profile API: GET /v1/profiles (the profiles
// in use, for clients choosing one) and POST /v1/profiles/reload
// (operator: read --profiles again).
func (d *Dispatcher) profileRoutes() {
	d.mux.HandleFunc("GET /v1/profiles", func(w http.ResponseWriter, r *http.Request) {
		ps, err := d.mm.Profiles(r.Context())
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "unavailable", "matchmaker unavailable")
			return
		}
		writeJSON(w, http.StatusOK, ps)
	})
	d.mux.HandleFunc("POST /v1/profiles/reload", d.operator(func(w http.ResponseWriter, r *http.Request) {
		n, err := d.ReloadProfiles(r.Context())
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, map[string]any{"type": "ok", "profiles": n})
		case errors.Is(err, errNoProfilesFile):
			writeError(w, http.StatusConflict, "no_profiles_file", err.Error())
		case errors.Is(err, matchmaking.ErrBadProfiles):
			writeError(w, http.StatusUnprocessableEntity, "bad_profiles", err.Error())
		default:
			writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		}
	}))
}

var errNoProfilesFile = errors.New("reload profiles: the dispatcher runs without --profiles")

// ReloadProfiles reads the profile file again and installs it; a file
// that does not parse or validate keeps the profiles in use and returns
// the error (wrapping matchmaking.ErrBadProfiles). It returns the number
// of profiles installed.
func (d *Dispatcher) ReloadProfiles(ctx context.Context) (int, error) {
	if d.cfg.ProfilesFile == "" {
		return 0, errNoProfilesFile
	}
	return d.mm.ReloadFile(ctx, d.cfg.ProfilesFile)
}

// watchHUP starts catching SIGHUP when there is a profile file (nil
// otherwise). It runs before Ready, so a SIGHUP sent once the dispatcher
// is ready reloads instead of ending the process.
func (d *Dispatcher) watchHUP() chan os.Signal {
	if d.cfg.ProfilesFile == "" {
		return nil
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// reloadOnHUP reloads the profiles on every SIGHUP on hup until ctx ends.
func (d *Dispatcher) reloadOnHUP(ctx context.Context, hup chan os.Signal) {
	if hup == nil {
		return
	}
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_, _ = d.ReloadProfiles(ctx)
		}
	}
}
