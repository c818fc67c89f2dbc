#include "agent/collectors/common/rtnetlink.h"

// glibc's <net/if.h> before any <linux/if*.h>, which then leave its definitions alone.
#include <net/if.h>

#include <linux/if_arp.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/network_namespace.h"

using namespace vigil;
using namespace vigil::collectors;

namespace {

// /sys/class/net/<device>/<attribute> without its newline; empty when it cannot be read.
std::string sysfsAttribute(const std::string& device, const std::string& attribute) {
  std::ifstream in("/sys/class/net/" + device + "/" + attribute);
  std::string text;
  std::getline(in, text);
  return text;
}

}  // namespace

// The collector reads these from netlink instead of sysfs only when both see the same devices,
// which they do here: the test's own namespace.
TEST_CASE("rtnetlink: every device's link attributes as /sys/class/net shows them",
          "[agent][collectors][node]") {
  LinkDumper dumper;
  std::vector<LinkAttributes> links;
  const Status st = dumper.dump(links);
  INFO(st.toString());
  REQUIRE(st.isOk());
  bool saw_loopback = false;
  for (const LinkAttributes& link : links) {
    INFO("device " << link.name);
    REQUIRE_FALSE(link.name.empty());
    CHECK(std::filesystem::exists("/sys/class/net/" + link.name));
    CHECK(std::to_string(link.index) == sysfsAttribute(link.name, "ifindex"));
    CHECK(std::to_string(link.link.value_or(link.index)) == sysfsAttribute(link.name, "iflink"));
    CHECK(std::to_string(link.type) == sysfsAttribute(link.name, "type"));
    REQUIRE(link.mtu.has_value());
    CHECK(std::to_string(*link.mtu) == sysfsAttribute(link.name, "mtu"));
    REQUIRE(link.tx_queue_len.has_value());
    CHECK(std::to_string(*link.tx_queue_len) == sysfsAttribute(link.name, "tx_queue_len"));
    REQUIRE(link.group.has_value());
    CHECK(std::to_string(*link.group) == sysfsAttribute(link.name, "netdev_group"));
    REQUIRE(link.link_mode.has_value());
    CHECK(std::to_string(*link.link_mode) == sysfsAttribute(link.name, "link_mode"));
    CHECK(link.address == sysfsAttribute(link.name, "address"));
    CHECK(link.broadcast == sysfsAttribute(link.name, "broadcast"));
    CHECK(link.alias == sysfsAttribute(link.name, "ifalias"));
    if (link.carrier_changes) {
      CHECK(std::to_string(*link.carrier_changes) == sysfsAttribute(link.name, "carrier_changes"));
    }
    if (link.type == ARPHRD_LOOPBACK) {
      saw_loopback = true;
      CHECK(link.address == "00:00:00:00:00:00");
    }
  }
  CHECK(saw_loopback);

  SECTION("a second dump reuses the entries and gives the same devices") {
    std::vector<LinkAttributes> again = links;
    REQUIRE(dumper.dump(again).isOk());
    REQUIRE(again.size() == links.size());
    for (std::size_t i = 0; i < links.size(); ++i) {
      CHECK(again[i].name == links[i].name);
      CHECK(again[i].index == links[i].index);
    }
  }
}

// refresh() dumps only after the kernel announces a link change, so the collector's cycles
// cost one empty receive while nothing changes. Run in a network namespace of its own (on a
// thread of its own: the namespace is the thread's), where the test can change a link without
// touching the machine's: its loopback device, down when the namespace is made.
TEST_CASE("rtnetlink: refresh dumps again only when the kernel announces a link change",
          "[agent][collectors][node]") {
  struct Seen {
    std::string error;
    std::vector<bool> changed;  // per refresh
    std::vector<std::size_t> devices;
    std::vector<bool> loopback_up;
  } seen;
  const bool isolated = test::inNewNetworkNamespace([&seen] {
    LinkDumper dumper;
    auto refresh = [&] {
      bool changed = false;
      const Status st = dumper.refresh(changed);
      if (!st.isOk()) {
        seen.error = st.toString();
      }
      seen.changed.push_back(changed);
      seen.devices.push_back(dumper.links().size());
      bool up = false;
      for (const LinkAttributes& link : dumper.links()) {
        up = up || (link.name == "lo" && (link.flags & IFF_UP) != 0);
      }
      seen.loopback_up.push_back(up);
    };
    refresh();  // the first dump
    refresh();  // nothing changed
    if (std::string error = test::bringLoopbackUp(); !error.empty()) {
      seen.error = error;
    }
    refresh();  // lo came up: announced
    refresh();  // nothing since
  });
  if (!isolated) {
    return;
  }
  INFO(seen.error);
  REQUIRE(seen.error.empty());
  REQUIRE(seen.changed == std::vector<bool>{true, false, true, false});
  // lo, and the fallback tunnel devices of any tunnel module loaded (tunl0, sit0...).
  REQUIRE(seen.devices.size() == 4);
  CHECK(seen.devices[0] >= 1);
  CHECK(seen.devices == std::vector<std::size_t>(4, seen.devices[0]));
  CHECK(seen.loopback_up == std::vector<bool>{false, false, true, true});
}
