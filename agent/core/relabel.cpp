#include "vigil/relabel.h"

#include <openssl/evp.h>
#include <re2/re2.h>

#include <algorithm>
#include <cctype>

namespace vigil {

namespace {

bool isReplacementNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// Go's regexp.Expand: $name or ${name}, where a name is a group number or a named group; $$ is
// a literal $; an unknown or unmatched group expands to nothing; a malformed reference leaves
// the $ as text.
std::string expand(std::string_view tmpl, const re2::RE2& re,
                   const std::vector<re2::StringPiece>& groups) {
  std::string out;
  std::size_t i = 0;
  while (i < tmpl.size()) {
    const std::size_t dollar = tmpl.find('$', i);
    if (dollar == std::string_view::npos) {
      out.append(tmpl.substr(i));
      break;
    }
    out.append(tmpl.substr(i, dollar - i));
    i = dollar + 1;
    if (i < tmpl.size() && tmpl[i] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    std::string_view name;
    if (i < tmpl.size() && tmpl[i] == '{') {
      const std::size_t close = tmpl.find('}', i + 1);
      const std::string_view inner =
          close == std::string_view::npos ? std::string_view() : tmpl.substr(i + 1, close - i - 1);
      if (close == std::string_view::npos || inner.empty() ||
          !std::all_of(inner.begin(), inner.end(), isReplacementNameChar)) {
        out.push_back('$');
        continue;
      }
      name = inner;
      i = close + 1;
    } else {
      std::size_t end = i;
      while (end < tmpl.size() && isReplacementNameChar(tmpl[end])) {
        ++end;
      }
      if (end == i) {
        out.push_back('$');
        continue;
      }
      name = tmpl.substr(i, end - i);
      i = end;
    }
    int index = -1;
    if (std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      // Go parses the number; an absurdly long one is simply out of range.
      index = name.size() > 6 ? -1 : std::stoi(std::string(name));
    } else {
      const auto& named = re.NamedCapturingGroups();
      if (auto it = named.find(std::string(name)); it != named.end()) {
        index = it->second;
      }
    }
    if (index >= 0 && static_cast<std::size_t>(index) < groups.size() &&
        groups[index].data() != nullptr) {
      out.append(groups[index].data(), groups[index].size());
    }
  }
  return out;
}

const std::string* find(const LabelSet& labels, std::string_view name) {
  auto it = std::lower_bound(labels.begin(), labels.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  return it != labels.end() && it->name == name ? &it->value : nullptr;
}

// Sets (or, for an empty value, removes) a label, keeping the set sorted.
void setLabel(LabelSet& labels, const std::string& name, std::string value) {
  auto it = std::lower_bound(labels.begin(), labels.end(), name,
                             [](const Label& l, const std::string& n) { return l.name < n; });
  const bool present = it != labels.end() && it->name == name;
  if (value.empty()) {
    if (present) {
      labels.erase(it);
    }
  } else if (present) {
    it->value = std::move(value);
  } else {
    labels.insert(it, Label{name, std::move(value)});
  }
}

// Prometheus's hashmod: the low 64 bits (big-endian) of the MD5 of the value.
uint64_t md5Low64(std::string_view value) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(value.data(), value.size(), digest, &len, EVP_md5(), nullptr);
  uint64_t s = 0;
  for (unsigned i = 8; i < 16 && i < len; ++i) {
    s = (s << 8) | digest[i];
  }
  return s;
}

bool fullMatch(const re2::RE2& re, std::string_view text, std::vector<re2::StringPiece>* groups) {
  if (groups == nullptr) {
    return re.Match(re2::StringPiece(text.data(), text.size()), 0, text.size(),
                    re2::RE2::ANCHOR_BOTH, nullptr, 0);
  }
  groups->assign(static_cast<std::size_t>(re.NumberOfCapturingGroups()) + 1, re2::StringPiece());
  return re.Match(re2::StringPiece(text.data(), text.size()), 0, text.size(), re2::RE2::ANCHOR_BOTH,
                  groups->data(), static_cast<int>(groups->size()));
}

}  // namespace

Result<RelabelAction> parseRelabelAction(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::pair<const char*, RelabelAction> kActions[] = {
      {"replace", RelabelAction::kReplace},     {"keep", RelabelAction::kKeep},
      {"drop", RelabelAction::kDrop},           {"keepequal", RelabelAction::kKeepEqual},
      {"dropequal", RelabelAction::kDropEqual}, {"hashmod", RelabelAction::kHashMod},
      {"labelmap", RelabelAction::kLabelMap},   {"labeldrop", RelabelAction::kLabelDrop},
      {"labelkeep", RelabelAction::kLabelKeep}, {"lowercase", RelabelAction::kLowercase},
      {"uppercase", RelabelAction::kUppercase},
  };
  for (const auto& [n, a] : kActions) {
    if (lower == n) {
      return a;
    }
  }
  return invalidArgument("unknown relabel action \"" + std::string(name) +
                         "\" (expected replace, keep, drop, keepequal, dropequal, hashmod, "
                         "labelmap, labeldrop, labelkeep, lowercase or uppercase)");
}

Result<RelabelConfig> RelabelConfig::make(RelabelAction action,
                                          std::vector<std::string> source_labels, std::string regex,
                                          std::string target_label, std::string replacement) {
  RelabelConfig c;
  c.action = action;
  c.source_labels = std::move(source_labels);
  c.regex = std::move(regex);
  c.target_label = std::move(target_label);
  c.replacement = std::move(replacement);
  if (Status st = c.compile(); !st.isOk()) {
    return st;
  }
  return c;
}

Status RelabelConfig::compile() {
  re2::RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_shared<re2::RE2>(regex, options);
  if (!re->ok()) {
    return invalidArgument("regex: invalid regular expression \"" + regex + "\": " + re->error());
  }
  compiled = std::move(re);
  const bool defaults_only = source_labels.empty() && separator == ";" && modulus == 0 &&
                             target_label.empty() && replacement == "$1";
  switch (action) {
    case RelabelAction::kReplace:
      if (target_label.empty()) {
        return invalidArgument(
            "target_label: relabel configuration for replace action requires "
            "'target_label' value");
      }
      if (target_label.find('$') == std::string::npos && !isValidLabelName(target_label)) {
        return invalidArgument("target_label: \"" + target_label +
                               "\" is invalid for replace action");
      }
      break;
    case RelabelAction::kLowercase:
    case RelabelAction::kUppercase:
      if (!isValidLabelName(target_label)) {
        return invalidArgument("target_label: \"" + target_label +
                               "\" is invalid for lowercase/uppercase action");
      }
      break;
    case RelabelAction::kHashMod:
      if (target_label.empty()) {
        return invalidArgument("target_label: hashmod action requires 'target_label' value");
      }
      if (modulus == 0) {
        return invalidArgument(
            "modulus: relabel configuration for hashmod requires non-zero "
            "modulus");
      }
      break;
    case RelabelAction::kKeepEqual:
    case RelabelAction::kDropEqual:
      if (target_label.empty() || regex != "(.*)" || modulus != 0 || separator != ";" ||
          replacement != "$1") {
        return invalidArgument(
            "keepequal/dropequal actions require only 'source_labels' and "
            "'target_label'");
      }
      break;
    case RelabelAction::kLabelDrop:
    case RelabelAction::kLabelKeep:
      if (!defaults_only) {
        return invalidArgument(
            "labeldrop/labelkeep actions require only 'regex', and no other "
            "fields");
      }
      break;
    case RelabelAction::kLabelMap:
    case RelabelAction::kKeep:
    case RelabelAction::kDrop:
      break;
  }
  return Status::ok();
}

bool relabel(const std::vector<RelabelConfig>& configs, LabelSet& labels) {
  std::vector<re2::StringPiece> groups;
  std::string value;
  for (const RelabelConfig& c : configs) {
    const re2::RE2& re = *c.compiled;
    value.clear();
    for (std::size_t i = 0; i < c.source_labels.size(); ++i) {
      if (i > 0) {
        value += c.separator;
      }
      if (const std::string* v = find(labels, c.source_labels[i])) {
        value += *v;
      }
    }
    switch (c.action) {
      case RelabelAction::kDrop:
        if (fullMatch(re, value, nullptr)) {
          return false;
        }
        break;
      case RelabelAction::kKeep:
        if (!fullMatch(re, value, nullptr)) {
          return false;
        }
        break;
      case RelabelAction::kDropEqual: {
        const std::string* t = find(labels, c.target_label);
        if ((t ? *t : std::string()) == value) {
          return false;
        }
        break;
      }
      case RelabelAction::kKeepEqual: {
        const std::string* t = find(labels, c.target_label);
        if ((t ? *t : std::string()) != value) {
          return false;
        }
        break;
      }
      case RelabelAction::kReplace: {
        if (!fullMatch(re, value, &groups)) {
          break;
        }
        const std::string target = expand(c.target_label, re, groups);
        if (!isValidLabelName(target)) {
          break;
        }
        setLabel(labels, target, expand(c.replacement, re, groups));
        break;
      }
      case RelabelAction::kLowercase:
      case RelabelAction::kUppercase: {
        const bool lower = c.action == RelabelAction::kLowercase;
        std::transform(value.begin(), value.end(), value.begin(), [lower](unsigned char ch) {
          return static_cast<char>(lower ? std::tolower(ch) : std::toupper(ch));
        });
        setLabel(labels, c.target_label, value);
        break;
      }
      case RelabelAction::kHashMod:
        setLabel(labels, c.target_label, std::to_string(md5Low64(value) % c.modulus));
        break;
      case RelabelAction::kLabelMap: {
        LabelSet mapped = labels;
        for (const Label& l : labels) {
          if (fullMatch(re, l.name, &groups)) {
            setLabel(mapped, expand(c.replacement, re, groups), l.value);
          }
        }
        labels = std::move(mapped);
        break;
      }
      case RelabelAction::kLabelDrop:
      case RelabelAction::kLabelKeep: {
        const bool drop = c.action == RelabelAction::kLabelDrop;
        std::erase_if(labels,
                      [&](const Label& l) { return fullMatch(re, l.name, nullptr) == drop; });
        break;
      }
    }
  }
  return true;
}

}  // namespace vigil
