// The agent sets spdlog up on its main thread before any other thread starts. A test that
// starts threads before anything has logged would have them race to create spdlog's registry
// (ThreadSanitizer reports it once a test case runs in a process of its own), so the test
// executables that log create it here, before main, as the agent does.
#include <spdlog/spdlog.h>

namespace {

const bool kLoggerReady = [] {
  spdlog::default_logger();
  return true;
}();

}  // namespace
