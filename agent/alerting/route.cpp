// Route matching and amtool's tree rendering.
#include "vigil/alerting/config.h"

namespace vigil::alerting {

namespace {

void collect(const Route& route, const LabelSet& labels, std::vector<const Route*>& out) {
  const std::size_t before = out.size();
  for (const Route& child : route.routes) {
    if (!matchesAll(child.matchers, labels)) {
      continue;
    }
    collect(child, labels, out);
    if (!child.continue_matching) {
      break;
    }
  }
  if (out.size() == before) {
    out.push_back(&route);
  }
}

std::string slug(const Route& route) {
  std::string out = route.matchers.empty() ? "default-route" : matchersString(route.matchers);
  if (route.continue_matching) {
    out += "  continue: true";
  }
  return out + "  receiver: " + route.options.receiver;
}

void render(const Route& route, const std::string& indent, bool last, std::string& out) {
  out += indent + (last ? "└── " : "├── ") + slug(route) + "\n";
  // treeprint, which amtool uses, continues a branch with two no-break spaces.
  const std::string child_indent = indent + (last ? "    " : "│\u00a0\u00a0 ");
  for (std::size_t i = 0; i < route.routes.size(); ++i) {
    render(route.routes[i], child_indent, i + 1 == route.routes.size(), out);
  }
}

}  // namespace

std::vector<const Route*> Route::match(const LabelSet& labels) const {
  std::vector<const Route*> out;
  if (matchesAll(matchers, labels)) {
    collect(*this, labels, out);
  }
  return out;
}

std::string routeTreeText(const Route& root) {
  std::string out = "Routing tree:\n.\n";
  render(root, "", true, out);
  return out + "\n";
}

}  // namespace vigil::alerting
