// `vigil routes`: prints the routing tree and the receivers a label set routes to, exactly as
// `amtool config routes [show|test]` prints them, so that either tool can check a route tree.
#include "routes_command.h"

#include <algorithm>
#include <iostream>

#include "vigil/alerting/config.h"

namespace vigil {

namespace {

constexpr const char* kRoutesUsage =
    R"(Usage: vigil routes [show] --config FILE
       vigil routes test --config FILE [--verify.receivers=A,B] [--tree] LABEL=VALUE...

FILE is an alertmanager.yml, or a vigil configuration whose `alerting` section holds the
routing (inline or through `config_file`).

  show   prints the routing tree (as `amtool config routes show`)
  test   prints the receivers an alert with these labels is routed to, comma-separated, in
         tree order (as `amtool config routes test`); with --verify.receivers, exits 1 and
         warns when they differ; --tree also prints the matching part of the tree.
)";

// The matching part of the tree, as amtool's --tree prints it.
void renderMatching(const alerting::Route& route, const LabelSet& labels, const std::string& indent,
                    bool last, bool top, std::string& out) {
  std::vector<const alerting::Route*> children;
  for (const auto& child : route.routes) {
    if (alerting::matchesAll(child.matchers, labels)) {
      children.push_back(&child);
      if (!child.continue_matching) {
        break;
      }
    }
  }
  std::string slug =
      route.matchers.empty() ? "default-route" : alerting::matchersString(route.matchers);
  if (children.empty()) {
    slug += "  receiver: " + route.options.receiver;
  }
  out += (top ? indent + "└── " : indent + (last ? "└── " : "├── ")) + slug + "\n";
  const std::string child_indent = indent + (last ? "    " : "│\u00a0\u00a0 ");
  for (std::size_t i = 0; i < children.size(); ++i) {
    renderMatching(*children[i], labels, child_indent, i + 1 == children.size(), false, out);
  }
}

}  // namespace

int routesCommand(const std::vector<std::string>& args) {
  std::string config_file;
  std::string verify;
  bool verify_given = false;
  bool tree = false;
  bool test = false;
  std::vector<std::string> label_args;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << kRoutesUsage;
      return 0;
    }
    if (i == 0 && (a == "test" || a == "show")) {
      test = a == "test";
    } else if (a == "--config" || a == "--config.file") {
      if (i + 1 >= args.size()) {
        std::cerr << "vigil: " << a << " needs a file\n\n" << kRoutesUsage;
        return 2;
      }
      config_file = args[++i];
    } else if (a.starts_with("--config=") || a.starts_with("--config.file=")) {
      config_file = a.substr(a.find('=') + 1);
    } else if (a.starts_with("--verify.receivers=")) {
      verify = a.substr(a.find('=') + 1);
      verify_given = true;
    } else if (a == "--tree") {
      tree = true;
    } else if (a.starts_with("--")) {
      std::cerr << "vigil: unknown option " << a << "\n\n" << kRoutesUsage;
      return 2;
    } else if (test) {
      label_args.push_back(a);
    } else {
      std::cerr << "vigil: routes show takes no arguments\n\n" << kRoutesUsage;
      return 2;
    }
  }
  if (config_file.empty()) {
    std::cerr << "vigil: routes needs --config FILE\n\n" << kRoutesUsage;
    return 2;
  }
  auto loaded = alerting::loadAlertingConfigFile(config_file);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) {
      std::cerr << e.toString() << "\n";
    }
    return 1;
  }
  const alerting::Route& root = loaded.config->route;
  if (!test) {
    std::cout << alerting::routeTreeText(root);
    return 0;
  }
  LabelSet labels;
  for (const auto& a : label_args) {
    auto m = alerting::parseMatcher(a);
    if (!m) {
      std::cerr << "vigil: failed to parse labels: " << m.status().message() << "\n";
      return 1;
    }
    if (m->type() != MatchType::kEqual) {
      std::cerr << "vigil: labels must be specified as key=value pairs\n";
      return 1;
    }
    auto it = std::find_if(labels.begin(), labels.end(),
                           [&](const Label& l) { return l.name == m->name(); });
    if (it != labels.end()) {
      it->value = m->value();  // the last one wins, as in amtool
    } else {
      labels.push_back({m->name(), m->value()});
    }
  }
  std::sort(labels.begin(), labels.end(),
            [](const Label& a, const Label& b) { return a.name < b.name; });
  if (tree) {
    std::string out = "Matching routes:\n.\n";
    renderMatching(root, labels, "", true, true, out);
    std::cout << out << "\n\n";
  }
  std::string receivers;
  for (const alerting::Route* r : root.match(labels)) {
    receivers += (receivers.empty() ? "" : ",") + r->options.receiver;
  }
  std::cout << receivers << "\n";
  if (verify_given && !verify.empty() && verify != receivers) {
    std::cout << "WARNING: Expected receivers did not match resolved receivers.\n";
    return 1;
  }
  return 0;
}

}  // namespace vigil
