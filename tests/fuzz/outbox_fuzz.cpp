// A notification outbox entry (a JSON file left by a previous run) -> Outbox::load.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "exporters/notify/outbox.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir =
      (std::filesystem::temp_directory_path() / ("vigil-fuzz-outbox-" + std::to_string(::getpid())))
          .string();
  std::filesystem::create_directories(dir);
  const std::string file = dir + "/0000000000000001-fuzz.json";
  FILE* f = std::fopen(file.c_str(), "wb");
  if (f == nullptr) {
    return 0;
  }
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  std::size_t corrupt = 0;
  vigil::exporters::Outbox(dir).load(100, &corrupt);
  std::filesystem::remove_all(dir);
  return 0;
}
