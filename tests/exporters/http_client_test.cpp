// The outgoing HTTP client on its own, against an httplib server on loopback: what the notifier
// and remote write tests do not reach (kept connections the server closed, bad origins, forms).
#include "vigil/exporters/http_client.h"

#include <httplib.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

using namespace std::chrono_literals;
using vigil::StatusCode;
using vigil::exporters::formEncode;
using vigil::exporters::HttpClient;

namespace {

struct EchoServer {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::atomic<int> requests{0};

  explicit EchoServer(int keep_alive_seconds) {
    server.set_keep_alive_timeout(keep_alive_seconds);
    server.Post("/echo", [this](const httplib::Request& req, httplib::Response& res) {
      ++requests;
      res.set_content(req.get_header_value("Content-Type") + "|" + req.body, "text/plain");
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
    while (!server.is_running()) {
      std::this_thread::sleep_for(1ms);
    }
  }
  ~EchoServer() {
    server.stop();
    thread.join();
  }
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port); }
};

}  // namespace

TEST_CASE("HTTP client: a kept connection the server closed is replaced, not an error",
          "[exporters][http]") {
  EchoServer server(1);
  HttpClient client(server.origin(), {}, 5s);
  auto first = client.post("/echo", {}, "one", "text/plain");
  REQUIRE(first);
  CHECK(first->status == 200);
  CHECK(first->body == "text/plain|one");
  // The server drops the idle connection after its keep-alive timeout.
  std::this_thread::sleep_for(2500ms);
  auto second = client.post("/echo", {}, "two", "application/json");
  REQUIRE(second);
  CHECK(second->body == "application/json|two");
  CHECK(server.requests == 2);
}

TEST_CASE("HTTP client: errors name what is wrong", "[exporters][http]") {
  for (const char* origin :
       {"ftp://127.0.0.1:1", "http://", "http://127.0.0.1:99999", "http://[::1:80"}) {
    HttpClient client(origin, {}, 1s);
    auto r = client.post("/", {}, "", "");
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(r.status().message().find(origin) != std::string::npos);
  }
  // A password in the URL is refused without being repeated (it would end up in logs).
  HttpClient with_password("https://vigil:s3cret@127.0.0.1:1", {}, 1s);
  auto refused_url = with_password.post("/", {}, "", "");
  REQUIRE_FALSE(refused_url);
  CHECK(refused_url.status().message().find("s3cret") == std::string::npos);
  CHECK(refused_url.status().message().find("basic_auth") != std::string::npos);
  // Nothing listens on port 1 of loopback.
  HttpClient refused("http://127.0.0.1:1", {}, 1s);
  auto r = refused.post("/", {}, "", "");
  REQUIRE_FALSE(r);
  CHECK(r.status().code() == StatusCode::kUnavailable);
  CHECK(r.status().message().find("cannot connect to 127.0.0.1:1") != std::string::npos);
}

TEST_CASE("HTTP client: a cancelled client refuses further requests", "[exporters][http]") {
  EchoServer server(5);
  HttpClient client(server.origin(), {}, 5s);
  REQUIRE(client.post("/echo", {}, "x", "text/plain"));
  client.cancel();
  auto r = client.post("/echo", {}, "y", "text/plain");
  REQUIRE_FALSE(r);
  CHECK(server.requests == 1);
}

TEST_CASE("HTTP client: forms are percent-encoded", "[exporters][http]") {
  CHECK(formEncode({{"query", "sum(rate(x[5m])) > 0"}, {"time", "1.5"}}) ==
        "query=sum%28rate%28x%5B5m%5D%29%29%20%3E%200&time=1.5");
  CHECK(formEncode({{"q", "a&b=c"}}) == "q=a%26b%3Dc");
  CHECK(formEncode({}).empty());
}
