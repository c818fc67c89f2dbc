#pragma once
// The persistent outbox: one file per message in a directory. A message is on disk (written,
// fsync'd, renamed into place, directory fsync'd) before it is sent, and its file is removed
// only once the receiver took it, so a crash at any point loses nothing; at worst a message
// is sent twice.

#include <atomic>
#include <string>
#include <vector>

#include "notifier.h"
#include "vigil/status.h"

namespace vigil::exporters {

class Outbox {
 public:
  explicit Outbox(std::string dir) : dir_(std::move(dir)) {}

  /// Creates the directory (mode 0700: messages may carry credentials) and reads every
  /// message, oldest first. Files that cannot be read back are renamed to *.bad, logged and
  /// counted in `corrupt`; at most `max_messages` are kept (the newest).
  Result<std::vector<OutgoingMessage>> load(std::size_t max_messages, std::size_t* corrupt);
  /// Gives `m` its id (ordered by creation, unique across nodes) and writes it durably.
  Status add(OutgoingMessage& m);
  void remove(const std::string& id);

  const std::string& dir() const { return dir_; }

 private:
  std::string pathOf(const std::string& id) const { return dir_ + "/" + id + ".json"; }
  std::string dir_;
  std::atomic<uint64_t> next_seq_{1};
};

}  // namespace vigil::exporters
