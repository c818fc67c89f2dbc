#pragma once
// Reading YAML documents (configuration, rule files, Alertmanager configuration) strictly:
// every problem is collected as a SourceError with file, line, column and the dotted field path,
// instead of stopping at the first. Include only in the translation units that parse YAML.

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/duration.h"
#include "vigil/status.h"

namespace vigil {

/// Reads a configuration-sized file whole: a huge file is a mistake, not a configuration, so
/// more than `max_bytes` is an error rather than memory spent.
inline Result<std::string> readConfigText(const std::string& path,
                                          std::size_t max_bytes = 4 * 1024 * 1024) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return invalidArgument("cannot read file: " + std::string(std::strerror(errno)));
  }
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_bytes) {
      return invalidArgument("file is larger than " + std::to_string(max_bytes >> 20) + " MiB");
    }
  }
  return text;
}

class YamlReader {
 public:
  YamlReader(std::string file, std::vector<SourceError>& errors)
      : file_(std::move(file)), errors_(errors) {}

  const std::string& file() const { return file_; }
  std::vector<SourceError>& errors() { return errors_; }

  void error(const YAML::Node& node, const std::string& field, const std::string& message) {
    SourceError e;
    e.file = file_;
    const YAML::Mark mark = node.Mark();
    if (mark.line >= 0) {
      e.line = mark.line + 1;
      e.column = mark.column + 1;
    }
    e.message = field.empty() ? message : field + ": " + message;
    errors_.push_back(std::move(e));
  }

  static std::string join(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
  }
  static std::string index(const std::string& parent, std::size_t i) {
    return parent + "[" + std::to_string(i) + "]";
  }

  /// Checks that `node` is a mapping whose keys are all in `allowed` and unique (an empty
  /// `allowed` admits no key). Returns false, after reporting, when it is not a mapping.
  bool checkMap(const YAML::Node& node, const std::string& field,
                std::initializer_list<std::string_view> allowed) {
    return checkMap(node, field,
                    std::span<const std::string_view>(allowed.begin(), allowed.size()));
  }
  bool checkMap(const YAML::Node& node, const std::string& field,
                std::span<const std::string_view> allowed) {
    if (!node.IsMap()) {
      error(node, field, "expected a mapping, got " + kindOf(node));
      return false;
    }
    std::set<std::string> seen;
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        error(kv.first, join(field, key), "duplicate key");
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) {
        continue;
      }
      if (allowed.size() == 0) {
        error(kv.first, join(field, key), "unknown key (this section takes no keys yet)");
        continue;
      }
      std::string list;
      for (auto a : allowed) {
        list += list.empty() ? "" : ", ";
        list += a;
      }
      error(kv.first, join(field, key), "unknown key (expected one of: " + list + ")");
    }
    return true;
  }

  /// Checks that `node` is a list; reports it otherwise.
  bool checkList(const YAML::Node& node, const std::string& field) {
    if (!node.IsSequence()) {
      error(node, field, "expected a list, got " + kindOf(node));
      return false;
    }
    return true;
  }

  std::optional<std::string> scalar(const YAML::Node& node, const std::string& field) {
    if (!node.IsScalar()) {
      error(node, field, "expected a string, got " + kindOf(node));
      return std::nullopt;
    }
    return node.Scalar();
  }

  std::optional<bool> boolean(const YAML::Node& node, const std::string& field) {
    if (node.IsScalar()) {
      const std::string& s = node.Scalar();
      if (s == "true") {
        return true;
      }
      if (s == "false") {
        return false;
      }
    }
    error(node, field, "expected true or false, got " + kindOf(node));
    return std::nullopt;
  }

  /// A Prometheus duration ("30s", "1h30m").
  std::optional<Duration> duration(const YAML::Node& node, const std::string& field) {
    auto text = scalar(node, field);
    if (!text) {
      return std::nullopt;
    }
    auto parsed = parseDuration(*text);
    if (!parsed) {
      error(node, field, parsed.status().message());
      return std::nullopt;
    }
    return *parsed;
  }

  /// A list of strings (a null node is an empty list).
  std::optional<std::vector<std::string>> stringList(const YAML::Node& node,
                                                     const std::string& field) {
    std::vector<std::string> out;
    if (node.IsNull()) {
      return out;
    }
    if (!node.IsSequence()) {
      error(node, field, "expected a list, got " + kindOf(node));
      return std::nullopt;
    }
    bool ok = true;
    for (std::size_t i = 0; i < node.size(); ++i) {
      if (auto s = scalar(node[i], index(field, i))) {
        out.push_back(*s);
      } else {
        ok = false;
      }
    }
    if (!ok) {
      return std::nullopt;
    }
    return out;
  }

  static std::string kindOf(const YAML::Node& node) {
    switch (node.Type()) {
      case YAML::NodeType::Map:
        return "a mapping";
      case YAML::NodeType::Sequence:
        return "a list";
      case YAML::NodeType::Scalar:
        return "\"" + node.Scalar() + "\"";
      case YAML::NodeType::Null:
        return "nothing";
      default:
        return "an undefined value";
    }
  }

  /// Parses `text` as YAML; on a syntax error reports it (with its position) and returns
  /// nullopt.
  std::optional<YAML::Node> load(std::string_view text) {
    try {
      return YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
      reportException(e, "invalid YAML: ");
      return std::nullopt;
    }
  }

  /// yaml-cpp throws on some malformed trees (a mapping used as a key, ...): report those with
  /// their position rather than letting them escape.
  void reportException(const YAML::Exception& e, const std::string& prefix) {
    SourceError err;
    err.file = file_;
    if (e.mark.line >= 0) {
      err.line = e.mark.line + 1;
      err.column = e.mark.column + 1;
    }
    err.message = prefix + e.msg;
    errors_.push_back(std::move(err));
  }

 private:
  std::string file_;
  std::vector<SourceError>& errors_;
};

}  // namespace vigil
