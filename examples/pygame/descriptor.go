// Package pygame holds a minimal arena game server written in Python
// (server.py) and what it needs from Go: the process contract's message
// descriptors (proc_descriptor.bin), so that the Python side builds its
// protobuf messages at run time with nothing generated. See README.md.
package pygame

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/arena-game/arena/proto/procpb"
)

// DescriptorSet returns the FileDescriptorSet a non-Go process needs to
// speak the process contract: google/protobuf/duration.proto and any.proto,
// google/rpc/status.proto and error_details.proto (the ErrorInfo of
// errors), and proc.proto, in dependency order.
func DescriptorSet() ([]byte, error) {
	set := &descriptorpb.FileDescriptorSet{}
	for _, f := range []protoreflect.FileDescriptor{
		durationpb.File_google_protobuf_duration_proto,
		anypb.File_google_protobuf_any_proto,
		statuspb.File_google_rpc_status_proto,
		errdetails.File_google_rpc_error_details_proto,
		procpb.File_proc_proto,
	} {
		set.File = append(set.File, protodesc.ToFileDescriptorProto(f))
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(set)
}
