#pragma once
// Network devices' link attributes from the kernel's routing netlink (one RTM_GETLINK dump),
// in the form /sys/class/net/<device>/<attribute> shows them: one request instead of a read per
// device and attribute, made again only when the kernel announces a change (refresh). It sees the
// network namespace vigil runs in (as /proc/net does), which need not be the one a configured sysfs
// root shows.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vigil/status.h"

namespace vigil::collectors {

struct LinkAttributes {
  std::string name;
  int index = 0;
  unsigned type = 0;   // ARPHRD_*, sysfs "type"
  unsigned flags = 0;  // as dev_get_flags(): IFF_UP, IFF_DORMANT... (not sysfs "flags")
  // Absent when the kernel does not send the attribute (an older kernel).
  std::optional<uint32_t> mtu;
  std::optional<uint32_t> tx_queue_len;
  std::optional<uint32_t> group;
  std::optional<uint32_t> link;  // sent only when it differs from index (sysfs "iflink")
  std::optional<uint32_t> carrier_changes;
  std::optional<uint32_t> carrier_up_count;
  std::optional<uint32_t> carrier_down_count;
  std::optional<uint8_t> carrier;
  std::optional<uint8_t> operstate;  // IF_OPER_*, already IF_OPER_DOWN for a device not up
  std::optional<uint8_t> link_mode;
  // As sysfs formats them: "aa:bb:...", empty for a device without a hardware address.
  std::string address;
  std::string broadcast;
  std::string alias;  // empty when none is set
};

/// Dumps this network namespace's devices; keeps its socket open between dumps.
class LinkDumper {
 public:
  LinkDumper() = default;
  ~LinkDumper();
  LinkDumper(const LinkDumper&) = delete;
  LinkDumper& operator=(const LinkDumper&) = delete;

  /// Replaces `out` with one entry per device, in the kernel's order (by index). Entries are
  /// reused, so a steady set of devices allocates nothing. kUnavailable when netlink cannot be
  /// used (no socket, an error answer, devices changed during the dump).
  Status dump(std::vector<LinkAttributes>& out);

  /// For a caller that wants the devices every cycle: brings links() up to date, dumping only
  /// when the kernel announced a change to a link since the last good dump (it multicasts
  /// every new, changed and removed link to the RTNLGRP_LINK group) or kResyncPeriod has
  /// passed, which bounds the harm of a change it did not announce. `changed` is false when
  /// links() is the same as after the last call. Without the announcements (no socket for
  /// them) every call dumps.
  Status refresh(bool& changed);
  const std::vector<LinkAttributes>& links() const { return links_; }

  static constexpr std::chrono::seconds kResyncPeriod{60};

 private:
  // Whether an announcement came since the last call (or none can be told apart from none
  // coming: no socket yet, or a queue that overflowed); consumes them.
  bool announcedChange();

  int fd_ = -1;
  uint32_t seq_ = 0;
  std::vector<char> buf_;
  // refresh(): the socket subscribed to link announcements, the devices of the last good dump
  // and when it was made; links_current_ is false until a dump succeeds after subscribing.
  int watch_fd_ = -1;
  std::vector<LinkAttributes> links_;
  bool links_current_ = false;
  std::chrono::steady_clock::time_point last_dump_{};
};

}  // namespace vigil::collectors
