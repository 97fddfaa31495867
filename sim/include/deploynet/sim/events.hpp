#pragma once

// The discrete-event core: a time-ordered queue of small plain events. Ties keep the order
// they were scheduled in, so a run depends only on its seed.

#include <cstdint>
#include <queue>
#include <vector>

namespace deploynet::sim {

struct Event {
  double at = 0;           // ms of simulated time
  std::uint64_t seq = 0;   // scheduling order, for ties
  std::uint32_t kind = 0;  // the model's own event kinds
  std::uint32_t a = 0;     // the model's arguments (visitor slots, epochs, asset indices)
  std::uint32_t b = 0;
  std::uint32_t ea = 0;
  std::uint32_t eb = 0;
};

class EventQueue {
 public:
  void push(Event e) {
    e.seq = next_seq_++;
    heap_.push(e);
  }
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  const Event& top() const { return heap_.top(); }
  Event pop() {
    Event e = heap_.top();
    heap_.pop();
    return e;
  }
  std::uint64_t scheduled() const { return next_seq_; }

 private:
  struct Later {
    bool operator()(const Event& x, const Event& y) const {
      return x.at != y.at ? x.at > y.at : x.seq > y.seq;
    }
  };
  std::priority_queue<Event, std::vector<Event>, Later> heap_;
  std::uint64_t next_seq_ = 0;
};

// A link direction as a work-conserving FIFO server: a transfer occupies it for bytes / rate
// after whatever it already carries. Transfers through two links (a sender's uplink, a
// receiver's downlink) finish when both have carried them: aggregate rates are right, the
// order within one link is first come, first served.
//
// A transfer queues in the order it is asked for (`now`, which never goes back), and cannot
// finish before `start` (its latency) plus its own time: queueing by `start` instead would let
// a transfer asked for later but starting earlier wait behind one that starts later, and every
// chain of dependent transfers would push the link further into the future.
struct Link {
  double rate = 0;  // bytes per ms; 0: unlimited
  double free = 0;  // ms at which the queued work is done

  double reserve(double now, double start, double bytes) {
    if (rate <= 0) return start;
    const double own = bytes / rate;
    free = (now > free ? now : free) + own;
    return free > start + own ? free : start + own;
  }
};

}  // namespace deploynet::sim
