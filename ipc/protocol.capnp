# The vow wire protocol between a worker and its broker. Both sides.
#
# Framing: exactly one Cap'n Proto message per SOCK_SEQPACKET datagram, in the standard
# flat-array encoding (segment table, then segments). At most kMaxMessageBytes (64 KiB)
# per datagram. File descriptors travel as SCM_RIGHTS ancillary data: a Response whose
# result is `fd` carries exactly one; Hello may carry the seccomp listener; every other
# message carries none, and the broker ends a worker that attaches one uninvited.
#
# Phases (the broker's dispatch table enforces them; anything out of phase ends the worker):
#   1. an exec'd worker may send `getFilter` (once), and gets its seccomp program;
#   2. the worker sends `hello` exactly once, after it has locked itself down;
#   3. then any number of `open`, `connect`, `clock`, `violation`.
# Every request is answered by a Response with the same id, except `violation`. The
# worker does not wait for the answer to `hello` (it is locked already, and a broker that
# refuses the hello kills it); clients skip answers whose id they did not ask for.
#
# Security notes: every byte the broker reads is hostile. Paths are Data, not Text, so a
# NUL inside is visible to the broker instead of being cut off silently. The broker reads
# with an explicit ReaderOptions (traversal and nesting limits; see ipc/message.h).

@0xdb5a513c6dec1ef8;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("vow::wire");

const protocolVersion :UInt32 = 1;

struct Request {
  id @0 :UInt64;
  union {
    hello @1 :Hello;
    open @2 :Open;
    connect @3 :Connect;
    clock @4 :Clock;
    violation @5 :Violation;
    getFilter @6 :Void;
  }
}

struct Hello {
  version @0 :UInt32;
  # True when a seccomp user-notification listener fd is attached (penalty kill, errno
  # and log); the broker refuses a hello whose attachment does not match the policy.
  listenerAttached @1 :Bool;
}

struct Open {
  path @0 :Data;    # absolute path; the broker resolves it itself
  flags @1 :UInt32; # open(2) flags; unknown bits are refused
  mode @2 :UInt32;  # for O_CREAT / O_TMPFILE; masked to 0777 by the broker
}

struct Connect {
  transport @0 :Transport;
  address @1 :Data; # tcp/udp: 4 (IPv4) or 16 (IPv6) bytes, network order
  port @2 :UInt16;  # tcp/udp
  path @3 :Data;    # unix: the socket path
  enum Transport {
    tcp @0;
    udp @1;
    unix @2;
  }
}

struct Clock {
  # Reserved for later clock kinds; today it is the policy's clock (real/fixed/offset/none).
  unused @0 :Void;
}

# Sent by a worker in penalty `trap`, from its SIGSYS handler: what the kernel refused.
# It is the worker's word, so the broker only records it.
struct Violation {
  syscall @0 :Int32;
  arch @1 :UInt32;            # AUDIT_ARCH_* value
  args @2 :List(UInt64);      # six arguments
}

struct Response {
  id @0 :UInt64;
  union {
    hello @1 :HelloReply;
    fd @2 :Void;              # exactly one fd attached (SCM_RIGHTS)
    error @3 :Error;
    time @4 :Time;
    filter @5 :Filter;
  }
}

struct HelloReply {
  version @0 :UInt32;
}

struct Error {
  errno @0 :Int32;            # what the worker's call returns
  reason @1 :Text;            # why, for humans (also in the broker's audit log)
}

struct Time {
  seconds @0 :Int64;          # since the Unix epoch
  nanos @1 :UInt32;           # 0..999999999
}

# The seccomp program for an exec'd worker, compiled by the broker.
struct Filter {
  program @0 :Data;           # struct sock_filter[], host byte order, 8 bytes each
  needsListener @1 :Bool;     # install with SECCOMP_FILTER_FLAG_NEW_LISTENER and send it in hello
  maxOpenFds @2 :UInt32;      # RLIMIT_NOFILE; 0 = leave as is
  cpuSeconds @3 :UInt32;      # RLIMIT_CPU; 0 = leave as is
  memoryBytes @4 :UInt64;     # RLIMIT_AS; 0 = leave as is
  trapReporter @5 :Bool;      # penalty trap: install the SIGSYS reporter first
}
