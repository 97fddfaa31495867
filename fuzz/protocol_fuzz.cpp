// The tracker protocol parser on any text: no crash, no unbounded recursion, and everything the
// server would send from what it accepted (relayed offers and answers, failure replies) is valid
// UTF-8 JSON that parses back.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <rapidjson/document.h>

#include "deploynet/protocol.hpp"
#include "deploynet/utf8.hpp"

namespace dn = deploynet;

static void must_be_json(const std::string& out) {
  if (!dn::valid_utf8(out)) std::abort();
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(out.data(),
                                                                                  out.size());
  if (d.HasParseError() || !d.IsObject()) std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = dn::parse_in_message(text);
  if (auto* err = std::get_if<dn::ParseError>(&r)) {
    must_be_json(dn::serialize_failure(err->reason, err->action,
                                       err->info_hash ? &*err->info_hash : nullptr));
    return 0;
  }
  auto& msg = std::get<dn::InMessage>(r);
  if (auto* a = std::get_if<dn::AnnounceRequest>(&msg)) {
    for (const auto& o : a->offers) {
      auto out = dn::serialize_offer(a->info_hash, a->peer_id, o.offer_id, o.offer);
      must_be_json(out);
      // A relayed offer is an announce-shaped message our own parser reads back.
      if (std::holds_alternative<dn::ParseError>(dn::parse_in_message(out))) std::abort();
    }
    if (a->answer)
      must_be_json(
          dn::serialize_answer(a->info_hash, a->peer_id, a->answer->offer_id, a->answer->answer));
    must_be_json(dn::serialize_announce_reply(a->info_hash, 1, 2, 120));
  }
  return 0;
}
