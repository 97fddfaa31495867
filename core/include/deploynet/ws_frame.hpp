#pragma once

// WebSocket framing (RFC 6455) for the server side, as plain functions over byte buffers: no
// sockets, so the parser is unit-tested on its own (and can be driven by a fuzzer). Client
// frames arrive masked and are unmasked in place; server frames are written unmasked.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace deploynet::ws {

enum class Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes the server sends (RFC 6455 section 7.4.1).
enum class CloseCode : std::uint16_t {
  kNormal = 1000,
  kGoingAway = 1001,
  kProtocolError = 1002,
  kInvalidPayload = 1007,
  kPolicyViolation = 1008,
  kTooBig = 1009,
};

// Appends one unmasked, final frame to `out`.
void append_frame(std::string& out, Opcode opcode, std::string_view payload);
// Appends a close frame with a code and a short reason (truncated to fit a control frame).
void append_close(std::string& out, CloseCode code, std::string_view reason = {});

// Reads client frames and assembles messages. Feed it bytes; it reports one event at a time.
class MessageReader {
 public:
  explicit MessageReader(std::size_t max_message) : max_message_(max_message) {}

  enum class Kind : std::uint8_t {
    kNeedMore,  // no complete frame at the start of the buffer
    kFragment,  // a non-final fragment was taken in; nothing to handle yet
    kMessage,   // a whole text or binary message: `payload`
    kPing,      // answer with a pong carrying `payload`
    kPong,
    kClose,  // the client closes: a valid `close_code` to echo (1005 when it gave none)
    kError,  // protocol violation: close with `close_code`, `error` says why
  };
  struct Event {
    Kind kind = Kind::kNeedMore;
    std::string_view payload;
    std::uint16_t close_code = 0;
    const char* error = nullptr;
  };

  // Looks at the start of `buf`; on anything but kNeedMore sets `consumed` to the bytes used.
  // Payloads point into `buf` (unmasked in place) or into the reader's fragment buffer, and
  // stay valid until the next call. After kError the connection must close.
  Event next(std::span<char> buf, std::size_t& consumed);

  // Memory held for a message arriving in fragments (0 when none is in progress).
  std::size_t fragment_bytes() const { return fragments_.capacity(); }

 private:
  std::size_t max_message_;
  std::string fragments_;
  bool in_fragmented_ = false;
  bool text_ = false;  // the message being assembled is text (checked as UTF-8 when whole)
};

}  // namespace deploynet::ws
