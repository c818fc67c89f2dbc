#include "statsd_collector.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <thread>

#include "statsd.h"

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
    thread_ = std::thread([this] { io_.run(); });
    return Status::ok();
  }

  Status collect(const CollectContext&, MetricBatch& out) override {
    aggregator_.snapshot(out);
    return Status::ok();
  }

 private:
  void receive() {
    socket_.async_receive_from(asio::buffer(buffer_), sender_,
                               [this](const boost::system::error_code& ec, std::size_t n) {
                                 if (ec == asio::error::operation_aborted) {
                                   return;
                                 }
                                 if (!ec) {
                                   aggregator_.ingestPacket(std::string_view(buffer_.data(), n));
                                 }
                                 receive();
                               });
  }

  StatsdAggregator aggregator_;
  asio::io_context io_;
  udp::socket socket_{io_};
  udp::endpoint sender_;
  std::array<char, 65536> buffer_{};
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
