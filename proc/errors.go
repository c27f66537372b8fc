package proc

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of the contract's errors.
const ErrorDomain = "arena.proc"

// Sentinel errors that cross the plugin boundary. Implementations wrap
// them (fmt.Errorf("...: %w", ErrDraining)); callers test with errors.Is.
var (
	// ErrPortInUse: Start could not bind the port; the host tries another.
	ErrPortInUse = errors.New("port in use")
	// ErrDraining: the process accepts no new work.
	ErrDraining = errors.New("process is draining")
	// ErrRoomExists: the room is, or recently was, hosted here.
	ErrRoomExists = errors.New("room already hosted")
	// ErrUnknownRoom: no such room here.
	ErrUnknownRoom = errors.New("unknown room")
	// ErrRoomFull: no room for more rooms (or players) here.
	ErrRoomFull = errors.New("room full")
	// ErrUnknownMap: no such map in the world.
	ErrUnknownMap = errors.New("unknown map")
	// ErrNotStarted: Start has not succeeded yet.
	ErrNotStarted = errors.New("process not started")
	// ErrBadOptions: Start's options do not validate.
	ErrBadOptions = errors.New("bad options")
)

// reasons lists each sentinel with its ErrorInfo reason and gRPC code.
var reasons = []struct {
	err    error
	reason string
	code   codes.Code
}{
	{ErrPortInUse, "PORT_IN_USE", codes.AlreadyExists},
	{ErrDraining, "DRAINING", codes.Unavailable},
	{ErrRoomExists, "ROOM_EXISTS", codes.AlreadyExists},
	{ErrUnknownRoom, "UNKNOWN_ROOM", codes.NotFound},
	{ErrRoomFull, "ROOM_FULL", codes.ResourceExhausted},
	{ErrUnknownMap, "UNKNOWN_MAP", codes.NotFound},
	{ErrNotStarted, "NOT_STARTED", codes.FailedPrecondition},
	{ErrBadOptions, "BAD_OPTIONS", codes.InvalidArgument},
}

// Reason returns the ErrorInfo reason of the first sentinel err wraps, or
// "" when it wraps none.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return ""
}

// ErrorForReason returns the sentinel of an ErrorInfo reason, or nil for a
// reason the contract does not define.
func ErrorForReason(reason string) error {
	for _, r := range reasons {
		if r.reason == reason {
			return r.err
		}
	}
	return nil
}

// ToStatus converts err to a gRPC status error for the wire: a sentinel
// becomes its code with an ErrorInfo{Domain: "arena.proc", Reason}; a
// context error its code; anything else codes.Internal. nil stays nil.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			st := status.New(r.code, err.Error())
			if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: r.reason, Domain: ErrorDomain}); derr == nil {
				st = d
			}
			return st.Err()
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// FromStatus converts an error from the wire back: a status carrying an
// ErrorInfo of domain "arena.proc" wraps the reason's sentinel; the text
// is kept for people but never decides anything. op names the call.
func FromStatus(op string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != ErrorDomain {
			continue
		}
		if sentinel := ErrorForReason(info.GetReason()); sentinel != nil {
			return fmt.Errorf("%s: %w (%s)", op, sentinel, st.Message())
		}
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: %w: %s", op, context.DeadlineExceeded, st.Message())
	case codes.Canceled:
		return fmt.Errorf("%s: %w: %s", op, context.Canceled, st.Message())
	}
	return fmt.Errorf("%s: %w", op, err)
}
