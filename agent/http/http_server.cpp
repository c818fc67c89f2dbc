#include "http_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <thread>

namespace vigil {

namespace {

// Bounds on what a client can make vigil hold: no endpoint here takes a body larger than this.
constexpr std::size_t kMaxRequestBody = 1 << 20;
// Idle keep-alive connections are closed quickly so that shutdown is never held up by them.
constexpr time_t kKeepAliveSeconds = 1;
constexpr time_t kReadTimeoutSeconds = 5;
constexpr time_t kWriteTimeoutSeconds = 10;
constexpr std::size_t kWorkerThreads = 4;

std::string handlerLabel(const std::string& path) {
  for (const char* known : {"/metrics", "/-/healthy", "/-/ready", "/-/reload"}) {
    if (path == known) {
      return path;
    }
  }
  return "other";  // keeps the label's cardinality bounded whatever clients request
}

}  // namespace

struct HttpServer::Impl {
  httplib::Server server;
  std::thread thread;
  uint16_t port = 0;
  HttpHandlers handlers;
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { stop(); }

uint16_t HttpServer::port() const { return impl_->port; }

Result<std::unique_ptr<HttpServer>> HttpServer::start(const ListenAddress& address,
                                                      HttpHandlers handlers,
                                                      SelfMetrics& self_metrics) {
  auto impl = std::make_unique<Impl>();
  impl->handlers = std::move(handlers);
  httplib::Server& svr = impl->server;
  Impl* state = impl.get();

  svr.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  svr.set_payload_max_length(kMaxRequestBody);
  svr.set_keep_alive_timeout(kKeepAliveSeconds);
  svr.set_keep_alive_max_count(100);
  svr.set_read_timeout(kReadTimeoutSeconds, 0);
  svr.set_write_timeout(kWriteTimeoutSeconds, 0);

  svr.Get("/metrics", [state](const httplib::Request&, httplib::Response& res) {
    std::string body;
    body.reserve(64 * 1024);
    state->handlers.metrics(body);
    // httplib gzips text/* bodies itself when the request's Accept-Encoding allows it.
    res.set_content(std::move(body), "text/plain; version=0.0.4; charset=utf-8");
  });
  svr.Get("/-/healthy", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("vigil is Healthy.\n", "text/plain; charset=utf-8");
  });
  svr.Get("/-/ready", [state](const httplib::Request&, httplib::Response& res) {
    if (state->handlers.ready()) {
      res.set_content("vigil is Ready.\n", "text/plain; charset=utf-8");
    } else {
      res.status = 503;
      res.set_content("Service Unavailable\n", "text/plain; charset=utf-8");
    }
  });
  // Registered as a content-reader handler: httplib 0.11 otherwise waits for a body on a POST
  // without Content-Length (what `curl -X POST .../-/reload` sends) and answers 400 after the
  // read timeout. A body, if one was sent, is read (bounded) and ignored.
  auto reload = [state](const httplib::Request& req, httplib::Response& res,
                        const httplib::ContentReader& reader) {
    if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
      std::size_t total = 0;
      reader([&total](const char*, std::size_t n) {
        total += n;
        return total <= kMaxRequestBody;
      });
    }
    Status status = state->handlers.reload();
    if (status.isOk()) {
      res.set_content("", "text/plain; charset=utf-8");
    } else {
      res.status = 500;
      res.set_content("failed to reload config: " + status.message() + "\n",
                      "text/plain; charset=utf-8");
    }
  };
  svr.Post("/-/reload", reload);
  svr.Put("/-/reload", reload);
  svr.Get("/-/reload", [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "POST, PUT");
    res.set_content("Only POST or PUT requests allowed\n", "text/plain; charset=utf-8");
  });
  svr.set_logger([&self_metrics](const httplib::Request& req, const httplib::Response& res) {
    self_metrics.httpRequest(handlerLabel(req.path), res.status);
  });
  svr.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        spdlog::error("http handler failed path={} error=\"{}\"", req.path, what);
        res.status = 500;
        res.set_content("internal error\n", "text/plain; charset=utf-8");
      });

  if (address.port == 0) {
    int port = svr.bind_to_any_port(address.host);
    if (port <= 0) {
      return unavailable("cannot listen on " + address.toString() + ": bind failed");
    }
    impl->port = static_cast<uint16_t>(port);
  } else {
    if (!svr.bind_to_port(address.host, address.port)) {
      return unavailable("cannot listen on " + address.toString() +
                         ": address in use or not available");
    }
    impl->port = address.port;
  }
  impl->thread = std::thread([state] { state->server.listen_after_bind(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::stop() {
  if (impl_ && impl_->thread.joinable()) {
    impl_->server.stop();
    impl_->thread.join();
  }
}

}  // namespace vigil
