#include "deploynet/ws_frame.hpp"

#include <cstdint>
#include <cstring>

#include "deploynet/utf8.hpp"

namespace deploynet::ws {

void append_frame(std::string& out, Opcode opcode, std::string_view payload) {
  std::size_t n = payload.size();
  out.push_back(static_cast<char>(0x80 | static_cast<std::uint8_t>(opcode)));
  if (n < 126) {
    out.push_back(static_cast<char>(n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xFF));
    }
  }
  out.append(payload);
}

void append_close(std::string& out, CloseCode code, std::string_view reason) {
  char body[125];
  auto c = static_cast<std::uint16_t>(code);
  body[0] = static_cast<char>(c >> 8);
  body[1] = static_cast<char>(c & 0xFF);
  std::size_t len = reason.size() < 123 ? reason.size() : 123;
  if (len) std::memcpy(body + 2, reason.data(), len);
  append_frame(out, Opcode::kClose, std::string_view(body, 2 + len));
}

MessageReader::Event MessageReader::next(std::span<char> buf, std::size_t& consumed) {
  Event ev;
  // The last assembled message has been handled by now: give its memory back.
  if (!in_fragmented_ && !fragments_.empty()) std::string().swap(fragments_);
  auto error = [&](std::uint16_t code, const char* why) {
    ev.kind = Kind::kError;
    ev.close_code = code;
    ev.error = why;
    return ev;
  };
  if (buf.size() < 2) return ev;
  auto b0 = static_cast<std::uint8_t>(buf[0]);
  auto b1 = static_cast<std::uint8_t>(buf[1]);
  bool fin = b0 & 0x80;
  auto opcode = static_cast<Opcode>(b0 & 0x0F);
  if (b0 & 0x70) return error(1002, "reserved bits set (no extension was negotiated)");
  if (!(b1 & 0x80)) return error(1002, "client frame not masked");

  std::uint64_t len = b1 & 0x7F;
  std::size_t header = 2;
  if (len == 126) {
    if (buf.size() < 4) return ev;
    len = (static_cast<std::uint64_t>(static_cast<std::uint8_t>(buf[2])) << 8) |
          static_cast<std::uint8_t>(buf[3]);
    header = 4;
  } else if (len == 127) {
    if (buf.size() < 10) return ev;
    len = 0;
    for (int i = 2; i < 10; ++i) len = (len << 8) | static_cast<std::uint8_t>(buf[i]);
    if (len >> 63) return error(1002, "frame length out of range");
    header = 10;
  }

  bool control = static_cast<std::uint8_t>(opcode) & 0x8;
  if (control) {
    if (!fin) return error(1002, "fragmented control frame");
    if (len > 125) return error(1002, "control frame too long");
    if (opcode != Opcode::kClose && opcode != Opcode::kPing && opcode != Opcode::kPong) {
      return error(1002, "unknown opcode");
    }
  } else {
    if (opcode != Opcode::kContinuation && opcode != Opcode::kText && opcode != Opcode::kBinary) {
      return error(1002, "unknown opcode");
    }
    if (opcode == Opcode::kContinuation && !in_fragmented_) {
      return error(1002, "continuation frame without a message");
    }
    if (opcode != Opcode::kContinuation && in_fragmented_) {
      return error(1002, "new message inside a fragmented one");
    }
    // Refused as soon as the header says so: a huge frame is never buffered.
    if (len > max_message_ || fragments_.size() + len > max_message_) {
      return error(1009, "message too big");
    }
  }

  if (buf.size() < header + 4 + len) return ev;
  const char* mask = buf.data() + header;
  char* payload = buf.data() + header + 4;
  // Unmasked eight bytes at a time (the mask repeats every four), the tail byte by byte.
  std::uint64_t m8 = 0;
  for (int k = 0; k < 8; ++k)
    m8 |= std::uint64_t{static_cast<unsigned char>(mask[k & 3])} << (8 * k);
  std::size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, payload + i, 8);
    w ^= m8;
    std::memcpy(payload + i, &w, 8);
  }
  for (; i < len; ++i) payload[i] ^= mask[i & 3];
  consumed = header + 4 + static_cast<std::size_t>(len);
  std::string_view data(payload, static_cast<std::size_t>(len));

  switch (opcode) {
    case Opcode::kPing:
      ev.kind = Kind::kPing;
      ev.payload = data;
      return ev;
    case Opcode::kPong:
      ev.kind = Kind::kPong;
      ev.payload = data;
      return ev;
    case Opcode::kClose: {
      if (data.size() == 1) return error(1002, "close frame with a one-byte body");
      ev.kind = Kind::kClose;
      if (data.size() < 2) {
        ev.close_code = 1005;  // none given
        return ev;
      }
      auto code = static_cast<std::uint16_t>((static_cast<std::uint8_t>(data[0]) << 8) |
                                             static_cast<std::uint8_t>(data[1]));
      // RFC 6455 7.4: 1005, 1006 and 1015 are never sent; below 1000 and the unassigned
      // 1016-2999 are not close codes at all.
      bool valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                   (code >= 3000 && code <= 4999);
      if (!valid) return error(1002, "invalid close code");
      if (!valid_utf8(data.substr(2))) return error(1007, "close reason is not UTF-8");
      ev.close_code = code;
      return ev;
    }
    default:
      break;
  }

  if (fin && !in_fragmented_) {
    if (opcode == Opcode::kText && !valid_utf8(data)) return error(1007, "text frame is not UTF-8");
    ev.kind = Kind::kMessage;
    ev.payload = data;
    return ev;
  }
  // A fragment: gather until the final one. Memory is bounded by max_message_.
  if (!in_fragmented_) {
    in_fragmented_ = true;
    text_ = opcode == Opcode::kText;
    fragments_.clear();
  }
  fragments_.append(data);
  if (!fin) {
    ev.kind = Kind::kFragment;
    return ev;
  }
  in_fragmented_ = false;
  if (text_ && !valid_utf8(fragments_)) return error(1007, "text message is not UTF-8");
  ev.kind = Kind::kMessage;
  ev.payload = fragments_;
  return ev;
}

}  // namespace deploynet::ws
