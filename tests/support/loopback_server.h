#pragma once
// An HTTP server on an ephemeral loopback port for the length of a test: add handlers to
// `http`, then start().
#include <httplib.h>

#include <chrono>
#include <string>
#include <thread>

namespace vigil::test {

struct LoopbackServer {
  httplib::Server http;
  int port = 0;
  std::thread thread;

  void start() {
    port = http.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { http.listen_after_bind(); });
    while (!http.is_running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  ~LoopbackServer() {
    http.stop();
    if (thread.joinable()) {
      thread.join();
    }
  }
};

}  // namespace vigil::test
