#include "agent/collectors/common/proc_file.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/udp_sockets.h"

using namespace vigil;
using namespace vigil::collectors;

TEST_CASE("ProcFile: a file outside procfs is read every time", "[agent][collectors]") {
  test::TempDir dir;
  dir.write("mountinfo", "first\n");
  ProcFile file(dir.file("mountinfo"));
  std::string buf;
  bool changed = false;
  REQUIRE(file.readIfChanged(buf, changed).isOk());
  CHECK(changed);
  CHECK(buf == "first\n");
  dir.write("mountinfo", "second, longer\n");
  changed = false;
  REQUIRE(file.readIfChanged(buf, changed).isOk());
  CHECK(changed);
  CHECK(buf == "second, longer\n");
}

namespace {

// The exit code a step in a child returns when mounting cannot be tried here.
constexpr int kCannotMount = 77;

// Runs `steps` in a child with a mount namespace of its own, so that mounting there changes
// nothing else, and checks that it returned 0 (other codes say which step failed). Skipped,
// with a warning, where no such namespace can be made (no root, no user namespaces).
void checkInMountNamespace(const std::function<int()>& steps) {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (::unshare(CLONE_NEWNS) != 0 && ::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
      ::_exit(kCannotMount);
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      ::_exit(kCannotMount);
    }
    ::_exit(steps());
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == kCannotMount) {
    WARN("no mount namespace could be made here (needs root or user namespaces): not checked");
    return;
  }
  CHECK(WEXITSTATUS(status) == 0);
}

}  // namespace

TEST_CASE("ProcFile: a mount table is read again only after a mount changes it",
          "[agent][collectors]") {
  const std::string mountpoint = test::TempDir().path();  // removed at once; remade below
  checkInMountNamespace([&] {
    ProcFile table("/proc/self/mountinfo");
    std::string buf;
    bool changed = false;
    if (!table.readIfChanged(buf, changed).isOk() || !changed) {
      return 1;
    }
    const std::string before = buf;
    if (!table.readIfChanged(buf, changed).isOk() || changed || buf != before) {
      return 2;
    }
    std::filesystem::create_directories(mountpoint);
    if (::mount("vigil-test", mountpoint.c_str(), "tmpfs", 0, nullptr) != 0) {
      return kCannotMount;
    }
    if (!table.readIfChanged(buf, changed).isOk() || !changed ||
        buf.find(mountpoint) == std::string::npos) {
      return 3;
    }
    if (!table.readIfChanged(buf, changed).isOk() || changed) {
      return 4;
    }
    ::umount(mountpoint.c_str());
    if (!table.readIfChanged(buf, changed).isOk() || !changed ||
        buf.find(mountpoint) != std::string::npos) {
      return 5;
    }
    return 0;
  });
  std::filesystem::remove(mountpoint);
}

// procfs hands such a file out a page at a time at most, cut at a line: a read that stops short
// of the buffer is not the end of it. 80 sockets make /proc/net/udp 10 KB, 31 of them a page.
TEST_CASE("ProcFile: a file of records longer than the kernel's page is read whole",
          "[agent][collectors]") {
  test::UdpSockets sockets(80);
  ProcFile udp("/proc/net/udp");
  std::string buf;
  for (int read = 0; read < 2; ++read) {  // the first read and one sized by it
    REQUIRE(udp.read(buf).isOk());
    CHECK(buf.size() > 80 * 128);
    std::size_t found = 0;
    for (uint16_t port : sockets.ports) {
      found += buf.find(test::UdpSockets::localAddress(port)) != std::string::npos ? 1 : 0;
    }
    CHECK(found == sockets.ports.size());
    CHECK(buf.back() == '\n');
  }
}

// 100 mounts make the table some 20 KB, each line of it a record, and every tenth line is longer
// than the kernel's cut could be guessed from (a mount point of 1,600 characters, as an
// overlay's options can be).
TEST_CASE("ProcFile: a mount table longer than the kernel's page is read whole",
          "[agent][collectors]") {
  const std::string base = test::TempDir().path();  // removed at once; remade below
  checkInMountNamespace([&] {
    std::vector<std::string> mountpoints;
    for (int i = 0; i < 100; ++i) {
      std::string dir = base;
      for (int level = 0; level < (i % 10 == 0 ? 8 : 1); ++level) {
        dir += "/" + std::string(200, 'a' + static_cast<char>(level));
      }
      mountpoints.push_back(dir + "/mount-" + std::to_string(i));
      std::filesystem::create_directories(mountpoints.back());
      if (::mount("vigil-test", mountpoints.back().c_str(), "tmpfs", 0, nullptr) != 0) {
        return kCannotMount;
      }
    }
    ProcFile table("/proc/self/mountinfo");
    table.expectLongRecords();
    std::string buf;
    bool changed = false;
    if (!table.readIfChanged(buf, changed).isOk() || !changed || buf.size() < 100 * 100) {
      return 1;
    }
    for (const auto& m : mountpoints) {
      if (buf.find(m + " ") == std::string::npos) {
        return 2;
      }
    }
    return 0;
  });
  std::filesystem::remove_all(base);
}

TEST_CASE("ProcFile: a file longer than the bound is refused, naming it", "[agent][collectors]") {
  test::TempDir dir;
  const std::string path = dir.file("huge");
  dir.write("huge", "");
  std::filesystem::resize_file(path, ProcFile::kMaxBytes + 1);  // sparse: nothing written
  ProcFile file(path);
  std::string buf;
  const Status st = file.read(buf);
  CHECK(st.code() == StatusCode::kResourceExhausted);
  CHECK_THAT(st.message(), Catch::Contains(path) && Catch::Contains("longer than 64 MiB"));
  CHECK(buf.empty());
  std::filesystem::resize_file(path, 100);  // back within it: read again
  REQUIRE(file.read(buf).isOk());
  CHECK(buf == std::string(100, '\0'));
}

TEST_CASE("SharedProcFile: collectors of one round share one read, the next round reads again",
          "[agent][collectors]") {
  test::TempDir dir;
  dir.write("stat", "cpu0 1 2 3\n");
  auto cpu = SharedProcFile::forPath(dir.file("stat"));
  auto stat = SharedProcFile::forPath(dir.file("stat"));
  CHECK(cpu == stat);  // one per path
  CHECK(SharedProcFile::forPath(dir.file("other")) != cpu);
  std::string a;
  std::string b;
  REQUIRE(cpu->read(7, a).isOk());
  dir.write("stat", "cpu0 4 5 6\n");
  REQUIRE(stat->read(7, b).isOk());
  CHECK(a == "cpu0 1 2 3\n");
  CHECK(b == a);  // the same round: what the first read gave
  REQUIRE(stat->read(8, b).isOk());
  CHECK(b == "cpu0 4 5 6\n");
  // No round (a caller that runs none): read every time.
  dir.write("stat", "cpu0 7 8 9\n");
  REQUIRE(cpu->read(0, a).isOk());
  CHECK(a == "cpu0 7 8 9\n");
  // A failed read is shared too, and a later round looks again.
  auto gone = SharedProcFile::forPath(dir.file("gone"));
  CHECK(gone->read(9, a).code() == StatusCode::kNotFound);
  dir.write("gone", "back\n");
  CHECK(gone->read(9, a).code() == StatusCode::kNotFound);
  uint64_t round = 10;
  while (!gone->read(round, a).isOk() && round < 10 + ProcFile::kMissingRetryReads) {
    ++round;
  }
  CHECK(a == "back\n");
}

TEST_CASE("ProcFile: a missing file is looked for again only every so many reads",
          "[agent][collectors]") {
  test::TempDir dir;
  ProcFile file(dir.file("schedstat"));
  std::string buf = "left over";
  const Status missing = file.read(buf);
  CHECK(missing.code() == StatusCode::kNotFound);
  CHECK(missing.message().find("schedstat") != std::string::npos);  // names the file
  CHECK(buf.empty());
  // A kernel without the file does not get it later in this boot, mostly; one that does (a
  // module loaded) has it found within kMissingRetryReads reads, and read from then on.
  dir.write("schedstat", "version 15\n");
  int reads = 1;  // the one above, which looked it up
  Status status;
  do {
    ++reads;
    REQUIRE(reads <= ProcFile::kMissingRetryReads + 1);
    status = file.read(buf);
  } while (!status.isOk());
  // Looked up again on the read kMissingRetryReads after the lookup that missed, not before.
  CHECK(reads == ProcFile::kMissingRetryReads + 1);
  CHECK(buf == "version 15\n");
  dir.write("schedstat", "version 16\n");
  REQUIRE(file.read(buf).isOk());
  CHECK(buf == "version 16\n");
}

TEST_CASE("SettingFile: a setting is read again only once its refresh period has passed",
          "[agent][collectors]") {
  using std::chrono::milliseconds;
  test::TempDir dir;
  dir.write("nf_conntrack_max", "262144\n");
  SettingFile hourly(dir.file("nf_conntrack_max"), std::chrono::hours(1));
  SettingFile quick(dir.file("nf_conntrack_max"), milliseconds(20));
  std::string buf;
  REQUIRE(hourly.read(buf).isOk());
  CHECK(buf == "262144\n");
  REQUIRE(quick.read(buf).isOk());
  CHECK(buf == "262144\n");
  // An administrator raises the limit: the kept content until the period has passed.
  dir.write("nf_conntrack_max", "524288\n");
  REQUIRE(hourly.read(buf).isOk());
  CHECK(buf == "262144\n");
  std::this_thread::sleep_for(milliseconds(30));
  REQUIRE(quick.read(buf).isOk());
  CHECK(buf == "524288\n");
  CHECK(readNumber(quick, buf) == 524288);

  SECTION("a missing setting is absent, with the file named, until it appears") {
    SettingFile absent(dir.file("poolsize"), milliseconds(20));
    const Status missing = absent.read(buf);
    CHECK(missing.code() == StatusCode::kNotFound);
    CHECK(missing.message().find("poolsize") != std::string::npos);
    CHECK(buf.empty());
    CHECK_FALSE(readNumber(absent, buf).has_value());
  }
}
