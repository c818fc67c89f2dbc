// The HTTP server's connection handling, over real loopback sockets: keep-alive and pipelined
// requests, HEAD, HTTP/1.0, requests that arrive a few bytes at a time, the limits on headers
// and bodies, and the request and idle deadlines.
#include "agent/http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "agent/core/self_metrics.h"

using namespace vigil;
using namespace std::chrono_literals;

namespace {

// A plain client socket, so that the test controls every byte and when it is sent.
class RawClient {
 public:
  explicit RawClient(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawClient() { ::close(fd_); }

  void send(const std::string& data) {
    REQUIRE(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(data.size()));
  }

  // What arrives until `n` responses are complete (by their Content-Length, or the head alone
  // for those known to have no body), the peer closes, or `timeout` passes.
  std::string responses(int n, bool heads_only = false, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (complete(heads_only) < n && std::chrono::steady_clock::now() < deadline) {
      if (!readSome(deadline)) {
        break;
      }
    }
    return received_;
  }

  // Whether the peer closed the connection within `timeout` (what it sent first is kept).
  bool closedWithin(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!readSome(deadline)) {
        return closed_;
      }
    }
    return false;
  }

 private:
  bool readSome(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return false;
    }
    char buf[65536];
    const ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got <= 0) {
      closed_ = true;
      return false;
    }
    received_.append(buf, static_cast<std::size_t>(got));
    return true;
  }

  int complete(bool heads_only) const {
    int n = 0;
    std::size_t pos = 0;
    while (true) {
      const auto end = received_.find("\r\n\r\n", pos);
      if (end == std::string::npos) {
        return n;
      }
      std::size_t length = 0;
      const auto cl = received_.find("Content-Length: ", pos);
      if (!heads_only && cl != std::string::npos && cl < end) {
        length = std::stoul(received_.substr(cl + 16));
      }
      if (received_.size() < end + 4 + length) {
        return n;
      }
      pos = end + 4 + length;
      ++n;
    }
  }

  int fd_;
  std::string received_;
  bool closed_ = false;
};

struct TestServer {
  SelfMetrics metrics{"test", "test"};
  HttpServer server;

  explicit TestServer(HttpServerOptions options = defaults())
      : server(std::move(options), metrics) {
    server.route(
        "/echo", {"GET", "HEAD", "POST"},
        [](const HttpRequest& req, HttpResponse& res) {
          res.body = req.method + " " + req.path + "?" + req.query + " body=" + req.body + "\n";
        },
        Access::kPublic);
    server.route("/big", {"GET", "HEAD"},
                 [](const HttpRequest&, HttpResponse& res) { res.body = std::string(5000, 'x'); });
    server.route("/split", {"GET"}, [](const HttpRequest&, HttpResponse& res) {
      res.headers.emplace_back("X-Bad", "a\r\nSet-Cookie: injected=1");
      res.headers.emplace_back("X-Good", "kept");
      res.body = "ok\n";
    });
    server.route("/empty", {"GET"},
                 [](const HttpRequest&, HttpResponse& res) { res.status = 204; });
    REQUIRE(server.start().isOk());
  }

  static HttpServerOptions defaults() {
    HttpServerOptions o;
    o.address = ListenAddress{"127.0.0.1", 0};
    o.threads = 1;
    return o;
  }
};

}  // namespace

TEST_CASE("HTTP server: keep-alive and pipelined requests are answered in order",
          "[http][server]") {
  TestServer s;
  RawClient c(s.server.port());
  c.send("GET /echo?a=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string first = c.responses(1);
  CHECK_THAT(first, Catch::StartsWith("HTTP/1.1 200 OK\r\n"));
  CHECK_THAT(first, Catch::Contains("Server: vigil\r\n"));
  CHECK_THAT(first, Catch::EndsWith("GET /echo?a=1 body=\n"));
  // Three in one write, one with a body: each answered, in the order sent.
  c.send(
      "GET /echo?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /echo?n=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "GET /echo?n=4 HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string all = c.responses(4);
  const auto two = all.find("GET /echo?n=2 body=\n");
  const auto three = all.find("POST /echo?n=3 body=hello\n");
  const auto four = all.find("GET /echo?n=4 body=\n");
  REQUIRE(two != std::string::npos);
  REQUIRE(three != std::string::npos);
  REQUIRE(four != std::string::npos);
  CHECK(two < three);
  CHECK(three < four);
  CHECK_THAT(all, !Catch::Contains("Connection: close"));
}

TEST_CASE("HTTP server: a request that arrives a few bytes at a time", "[http][server]") {
  TestServer s;
  RawClient c(s.server.port());
  const std::string request =
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
  for (std::size_t i = 0; i < request.size(); i += 3) {
    c.send(request.substr(i, 3));
    std::this_thread::sleep_for(1ms);
  }
  CHECK_THAT(c.responses(1), Catch::EndsWith("POST /echo? body=abcdefg\n"));
}

TEST_CASE("HTTP server: HEAD has the headers and length of a GET, and no body", "[http][server]") {
  TestServer s;
  RawClient c(s.server.port());
  c.send("HEAD /big HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n");
  const std::string head = c.responses(1, true);
  CHECK_THAT(head, Catch::StartsWith("HTTP/1.1 200 OK\r\n"));
  CHECK_THAT(head, Catch::Contains("Content-Length: 5000\r\n"));
  CHECK_THAT(head, Catch::EndsWith("\r\n\r\n"));
  // The connection is still in step: the next response is the next request's.
  c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  // Nothing of the 5000-byte body came between the HEAD's head and the next response.
  const std::string both = c.responses(2, true);
  REQUIRE(both.size() > head.size());
  CHECK_THAT(both.substr(head.size()), Catch::StartsWith("HTTP/1.1 200 OK\r\n"));
  CHECK_THAT(both, Catch::EndsWith("GET /echo? body=\n"));
}

TEST_CASE("HTTP server: gzip when asked, 204 without a length, HTTP/1.0 keep-alive",
          "[http][server]") {
  TestServer s;
  RawClient c(s.server.port());
  c.send("GET /big HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n");
  const std::string big = c.responses(1);
  CHECK_THAT(big, Catch::Contains("Content-Encoding: gzip\r\n"));
  CHECK_THAT(big, Catch::Contains("Vary: Accept-Encoding\r\n"));
  const auto body = big.substr(big.find("\r\n\r\n") + 4);
  CHECK(body.size() < 5000);
  CHECK(gzipDecompress(body, 1 << 20).value() == std::string(5000, 'x'));

  RawClient empty(s.server.port());
  empty.send("GET /empty HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string none = empty.responses(1, true);
  CHECK_THAT(none, Catch::StartsWith("HTTP/1.1 204 No Content\r\n"));
  CHECK_THAT(none, !Catch::Contains("Content-Length"));

  RawClient old(s.server.port());
  old.send("GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK_THAT(old.responses(1), Catch::Contains("Connection: keep-alive\r\n"));
  RawClient old_close(s.server.port());
  old_close.send("GET /echo HTTP/1.0\r\n\r\n");
  CHECK_THAT(old_close.responses(1), Catch::Contains("Connection: close\r\n"));
  CHECK(old_close.closedWithin(2s));
}

TEST_CASE("HTTP server: a header from a handler cannot split the response", "[http][server]") {
  TestServer s;
  RawClient c(s.server.port());
  c.send("GET /split HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string res = c.responses(1);
  CHECK_THAT(res, !Catch::Contains("injected"));
  CHECK_THAT(res, !Catch::Contains("X-Bad"));
  CHECK_THAT(res, Catch::Contains("X-Good: kept\r\n"));
}

TEST_CASE("HTTP server: limits on headers and bodies answer with why, then close",
          "[http][server]") {
  HttpServerOptions o = TestServer::defaults();
  o.max_header_bytes = 2048;
  o.max_body_bytes = 100;
  TestServer s(o);
  RawClient headers(s.server.port());
  headers.send("GET /echo HTTP/1.1\r\nX-Long: " + std::string(4000, 'a') + "\r\n\r\n");
  CHECK_THAT(headers.responses(1), Catch::StartsWith("HTTP/1.1 431 "));
  CHECK(headers.closedWithin(2s));

  RawClient body(s.server.port());
  body.send("POST /echo HTTP/1.1\r\nContent-Length: 101\r\n\r\n");
  CHECK_THAT(body.responses(1), Catch::StartsWith("HTTP/1.1 413 "));
  CHECK(body.closedWithin(2s));

  RawClient chunked(s.server.port());
  chunked.send("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n80\r\n" +
               std::string(128, 'b') + "\r\n0\r\n\r\n");
  CHECK_THAT(chunked.responses(1), Catch::StartsWith("HTTP/1.1 413 "));

  RawClient garbage(s.server.port());
  garbage.send("\x01\x02 hello\r\n\r\n");
  CHECK_THAT(garbage.responses(1), Catch::StartsWith("HTTP/1.1 400 "));
  CHECK(garbage.closedWithin(2s));

  // A request just under both limits is served.
  RawClient fits(s.server.port());
  fits.send("POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'c'));
  CHECK_THAT(fits.responses(1), Catch::StartsWith("HTTP/1.1 200 "));
}

TEST_CASE("HTTP server: a slow request and an idle connection are closed on their deadlines",
          "[http][server]") {
  HttpServerOptions o = TestServer::defaults();
  o.request_timeout = 400ms;
  o.idle_timeout = 2500ms;
  TestServer s(o);

  // Half a request line, then nothing: closed after the request timeout, not the idle one.
  RawClient slow(s.server.port());
  const auto start = std::chrono::steady_clock::now();
  slow.send("GET /ech");
  CHECK(slow.closedWithin(3s));
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= 350ms);
  CHECK(took < 2000ms);  // well before the idle timeout

  // Kept alive after a response, then idle: open past the request timeout, closed after the
  // idle one.
  RawClient idle(s.server.port());
  idle.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE_THAT(idle.responses(1), Catch::StartsWith("HTTP/1.1 200 "));
  const auto served = std::chrono::steady_clock::now();
  CHECK_FALSE(idle.closedWithin(1500ms));
  CHECK(idle.closedWithin(5s));
  const auto idle_for = std::chrono::steady_clock::now() - served;
  CHECK(idle_for < 4500ms);

  // Requests every 300 ms keep a connection open well past its first deadline.
  RawClient busy(s.server.port());
  for (int i = 1; i <= 6; ++i) {
    busy.send("GET /echo?i=" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_THAT(busy.responses(i), Catch::EndsWith("GET /echo?i=" + std::to_string(i) + " body=\n"));
    std::this_thread::sleep_for(300ms);
  }
}
