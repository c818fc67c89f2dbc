#include "statsd_collector.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <thread>

#include "statsd.h"
#include "vigil/thread_name.h"

namespace vigil::collectors {

namespace {

namespace asio = boost::asio;
using asio::ip::udp;

class StatsdCollector : public Collector {
 public:
  StatsdCollector() = default;
  ~StatsdCollector() override {
    io_.stop();
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  Status listen(const ListenAddress& address) {
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(address.host.empty() ? "0.0.0.0" : address.host, ec);
    if (ec) {
      return invalidArgument("statsd listen_address: " + ec.message());
    }
    socket_.open(ip.is_v6() ? udp::v6() : udp::v4(), ec);
    if (!ec) {
      // A reload builds the new listener before the old one is gone: both may hold the port
      // for that moment.
      const int one = 1;
      ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      // Room for bursts while the thread is busy (best effort: the kernel caps it at
      // net.core.rmem_max).
      const int receive_buffer = 4 << 20;
      ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVBUF, &receive_buffer,
                   sizeof receive_buffer);
      socket_.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
      socket_.bind(udp::endpoint(ip, address.port), ec);
    }
    if (ec) {
      return Status(StatusCode::kUnavailable,
                    "statsd cannot listen on " + address.toString() + ": " + ec.message());
    }
    receive();
    thread_ = std::thread([this] {
      nameThisThread("statsd");
      io_.run();
    });
    return Status::ok();
  }

  Status collect(const CollectContext&, MetricBatch& out) override {
    aggregator_.snapshot(out);
    return Status::ok();
  }

 private:
  // Datagrams are read in batches with recvmmsg once the socket is readable: one system call
  // for up to kBatch packets instead of one each, which is what keeps a single core ahead of
  // hundreds of thousands of packets a second.
  static constexpr std::size_t kBatch = 64;
  // DogStatsD's largest default packet; a bigger datagram is truncated and counted as bad.
  static constexpr std::size_t kMaxPacket = 8192;

  void receive() {
    socket_.async_wait(udp::socket::wait_read, [this](const boost::system::error_code& ec) {
      if (ec == asio::error::operation_aborted) {
        return;
      }
      if (!ec) {
        drain();
      }
      receive();
    });
  }

  void drain() {
    if (messages_.empty()) {
      buffers_.resize(kBatch * kMaxPacket);
      messages_.resize(kBatch);
      iovecs_.resize(kBatch);
      for (std::size_t i = 0; i < kBatch; ++i) {
        iovecs_[i] = {buffers_.data() + i * kMaxPacket, kMaxPacket};
      }
    }
    // A bounded number of rounds, so that the io thread comes back to stop requests.
    for (int round = 0; round < 64; ++round) {
      for (std::size_t i = 0; i < kBatch; ++i) {
        messages_[i] = {};
        messages_[i].msg_hdr.msg_iov = &iovecs_[i];
        messages_[i].msg_hdr.msg_iovlen = 1;
      }
      const int n = ::recvmmsg(socket_.native_handle(), messages_.data(),
                               static_cast<unsigned>(kBatch), MSG_DONTWAIT, nullptr);
      if (n <= 0) {
        return;
      }
      for (int i = 0; i < n; ++i) {
        const mmsghdr& m = messages_[static_cast<std::size_t>(i)];
        if ((m.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
          aggregator_.rejectPacket();
        } else {
          aggregator_.ingestPacket(std::string_view(
              buffers_.data() + static_cast<std::size_t>(i) * kMaxPacket, m.msg_len));
        }
      }
      if (static_cast<std::size_t>(n) < kBatch) {
        return;
      }
    }
  }

  StatsdAggregator aggregator_;
  asio::io_context io_;
  udp::socket socket_{io_};
  std::vector<char> buffers_;
  std::vector<mmsghdr> messages_;
  std::vector<iovec> iovecs_;
  std::thread thread_;
};

}  // namespace

Result<CollectorPtr> makeStatsdCollector(const CollectorSettings& settings, const HostPaths&) {
  auto c = std::make_unique<StatsdCollector>();
  if (!settings.listen_address.empty()) {
    auto address = parseListenAddress(settings.listen_address);
    if (!address) {
      return address.status();
    }
    if (Status st = c->listen(*address); !st.isOk()) {
      return st;
    }
  }
  return CollectorPtr(std::move(c));
}

}  // namespace vigil::collectors
