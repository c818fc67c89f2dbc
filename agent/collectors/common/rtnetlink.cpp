#include "rtnetlink.h"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace vigil::collectors {
namespace {

// The dump's messages come in socket buffers of up to 32 KiB (the kernel's largest dump skb);
// a bigger one would be cut, which recvmsg reports (MSG_TRUNC).
constexpr std::size_t kReceiveBuffer = 64 * 1024;

template <typename T>
std::optional<T> scalar(const rtattr* a) {
  if (RTA_PAYLOAD(a) < sizeof(T)) {
    return std::nullopt;
  }
  T v;
  std::memcpy(&v, RTA_DATA(a), sizeof v);
  return v;
}

// A NUL-terminated string attribute, without its terminator.
void assignString(const rtattr* a, std::string& out) {
  const char* data = static_cast<const char*>(RTA_DATA(a));
  out.assign(data, ::strnlen(data, RTA_PAYLOAD(a)));
}

// As sysfs_format_mac: lowercase hex bytes joined by ':'.
void assignHardwareAddress(const rtattr* a, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* bytes = static_cast<const unsigned char*>(RTA_DATA(a));
  const std::size_t n = RTA_PAYLOAD(a);
  out.clear();
  for (std::size_t i = 0; i < n; ++i) {
    if (i != 0) {
      out.push_back(':');
    }
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xf]);
  }
}

void parseLink(const nlmsghdr* h, LinkAttributes& link) {
  const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
  link.index = ifi->ifi_index;
  link.type = ifi->ifi_type;
  link.flags = ifi->ifi_flags;
  link.name.clear();
  link.address.clear();
  link.broadcast.clear();
  link.alias.clear();
  link.mtu.reset();
  link.tx_queue_len.reset();
  link.group.reset();
  link.link.reset();
  link.carrier_changes.reset();
  link.carrier_up_count.reset();
  link.carrier_down_count.reset();
  link.carrier.reset();
  link.operstate.reset();
  link.link_mode.reset();
  int len = static_cast<int>(IFLA_PAYLOAD(h));
  for (const rtattr* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    switch (a->rta_type) {
      case IFLA_IFNAME:
        assignString(a, link.name);
        break;
      case IFLA_IFALIAS:
        assignString(a, link.alias);
        break;
      case IFLA_ADDRESS:
        assignHardwareAddress(a, link.address);
        break;
      case IFLA_BROADCAST:
        assignHardwareAddress(a, link.broadcast);
        break;
      case IFLA_MTU:
        link.mtu = scalar<uint32_t>(a);
        break;
      case IFLA_TXQLEN:
        link.tx_queue_len = scalar<uint32_t>(a);
        break;
      case IFLA_GROUP:
        link.group = scalar<uint32_t>(a);
        break;
      case IFLA_LINK:
        link.link = scalar<uint32_t>(a);
        break;
      case IFLA_CARRIER_CHANGES:
        link.carrier_changes = scalar<uint32_t>(a);
        break;
      case IFLA_CARRIER_UP_COUNT:
        link.carrier_up_count = scalar<uint32_t>(a);
        break;
      case IFLA_CARRIER_DOWN_COUNT:
        link.carrier_down_count = scalar<uint32_t>(a);
        break;
      case IFLA_CARRIER:
        link.carrier = scalar<uint8_t>(a);
        break;
      case IFLA_OPERSTATE:
        link.operstate = scalar<uint8_t>(a);
        break;
      case IFLA_LINKMODE:
        link.link_mode = scalar<uint8_t>(a);
        break;
      default:
        break;
    }
  }
}

Status failure(std::string_view what, int err) {
  return unavailable("rtnetlink " + std::string(what) + ": " + std::strerror(err));
}

}  // namespace

LinkDumper::~LinkDumper() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  if (watch_fd_ >= 0) {
    ::close(watch_fd_);
  }
}

bool LinkDumper::announcedChange() {
  if (watch_fd_ < 0) {
    watch_fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (watch_fd_ < 0) {
      return true;
    }
    // Only whether something came matters, not what: a small queue bounds the kernel memory
    // held for us, and one that overflows says so (ENOBUFS), which counts as a change.
    const int queue_bytes = 16 * 1024;
    ::setsockopt(watch_fd_, SOL_SOCKET, SO_RCVBUF, &queue_bytes, sizeof queue_bytes);
    sockaddr_nl groups{};
    groups.nl_family = AF_NETLINK;
    groups.nl_groups = RTMGRP_LINK;
    if (::bind(watch_fd_, reinterpret_cast<sockaddr*>(&groups), sizeof groups) < 0) {
      ::close(watch_fd_);
      watch_fd_ = -1;
    }
    return true;  // what changed before subscribing is only known from a dump
  }
  bool announced = false;
  for (;;) {
    // A short buffer takes each message whole off the queue (the rest is cut, MSG_TRUNC).
    char discard[256];
    if (::recv(watch_fd_, discard, sizeof discard, MSG_DONTWAIT) >= 0) {
      announced = true;
      continue;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return announced;
    }
    if (errno != ENOBUFS) {
      ::close(watch_fd_);  // subscribed afresh next time
      watch_fd_ = -1;
      return true;
    }
    announced = true;  // announcements were dropped: what they said is only known from a dump
  }
}

Status LinkDumper::refresh(bool& changed) {
  // Announcements are drained before the dump, not after: one that comes during the dump stays
  // queued and brings a dump next time rather than being lost.
  const bool announced = announcedChange();
  const auto now = std::chrono::steady_clock::now();
  if (links_current_ && !announced && now - last_dump_ < kResyncPeriod) {
    changed = false;
    return Status::ok();
  }
  changed = true;
  links_current_ = false;
  Status status = dump(links_);
  if (status.isOk()) {
    links_current_ = watch_fd_ >= 0;
    last_dump_ = now;
  }
  return status;
}

Status LinkDumper::dump(std::vector<LinkAttributes>& out) {
  if (fd_ < 0) {
    fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd_ < 0) {
      return failure("socket", errno);
    }
    // The kernel answers a dump at once; the timeout only bounds a kernel that does not.
    timeval timeout{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    buf_.resize(kReceiveBuffer);
  }
  struct {
    nlmsghdr header;
    ifinfomsg link;
    alignas(NLMSG_ALIGNTO) char ext_mask[RTA_SPACE(sizeof(uint32_t))];
  } request{};
  request.header.nlmsg_len = sizeof request;
  request.header.nlmsg_type = RTM_GETLINK;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.header.nlmsg_seq = ++seq_;
  request.link.ifi_family = AF_UNSPEC;
  // Without the interface statistics and virtual functions: neither is used here, and they
  // are most of each message.
  auto* ext = reinterpret_cast<rtattr*>(request.ext_mask);
  ext->rta_type = IFLA_EXT_MASK;
  ext->rta_len = RTA_LENGTH(sizeof(uint32_t));
  const uint32_t mask = RTEXT_FILTER_SKIP_STATS;
  std::memcpy(RTA_DATA(ext), &mask, sizeof mask);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_, &request, sizeof request, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) < 0) {
    return failure("request", errno);
  }

  std::size_t count = 0;
  for (;;) {
    iovec iov{buf_.data(), buf_.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t received = ::recvmsg(fd_, &msg, 0);
    if (received < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int err = errno;
      // What is left of this dump would be read as the next one's answer: start afresh.
      ::close(fd_);
      fd_ = -1;
      return failure("receive", err);
    }
    if ((msg.msg_flags & MSG_TRUNC) != 0) {
      ::close(fd_);
      fd_ = -1;
      return unavailable("rtnetlink receive: a message larger than 64 KiB");
    }
    int left = static_cast<int>(received);
    for (auto* h = reinterpret_cast<const nlmsghdr*>(buf_.data()); NLMSG_OK(h, left);
         h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq_) {
        continue;  // the tail of an earlier dump
      }
      if (h->nlmsg_type == NLMSG_DONE) {
        if ((h->nlmsg_flags & NLM_F_DUMP_INTR) != 0) {
          return unavailable("rtnetlink: devices changed during the dump");
        }
        out.resize(count);
        return Status::ok();
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        if (error->error == 0) {
          continue;  // an acknowledgement
        }
        return failure("dump", -error->error);
      }
      if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) {
        continue;
      }
      if (count == out.size()) {
        out.emplace_back();
      }
      parseLink(h, out[count++]);
    }
  }
}

}  // namespace vigil::collectors
