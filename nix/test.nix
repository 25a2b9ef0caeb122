# nix/test.nix - NixOS VM test: a LAN client maps a port with natpmpc through
# services.natpmp-server, and a host on the WAN side reaches it.
#
#   nix-build nix/test.nix                  (nixpkgs in NIX_PATH)
#   nix-build nix/test.nix -A driverInteractive
#
# The router runs networking.nftables, so the test also checks that the
# daemon's table outlives an nftables reload, a SIGHUP and a restart.
import <nixpkgs/nixos/tests/make-test-python.nix> ({ pkgs, lib, ... }:

let
  # Not 198.51.100.0/24 or any private block: natpmpc (libnatpmp >= 2023)
  # rejects a reserved public address and then maps nothing. nixpkgs'
  # upnp test uses the same network, on a vlan of its own.
  routerWan = "80.100.100.1";
  wanHost = "80.100.100.2";
  routerLan = "192.168.3.1";
  clientLan = "192.168.3.2";

  # What the client serves on the mapped port.
  answerDir = pkgs.writeTextDir "answer.txt" "hello from the LAN client\n";
  fetch = "curl --fail --silent --show-error --max-time 5 http://${routerWan}:8000/answer.txt";
in
{
  name = "natpmp-server";

  nodes = {
    # vlan 1 is the WAN (eth1 on the router), vlan 2 the LAN (eth2).
    router = { pkgs, ... }: {
      imports = [ ./module.nix ];
      virtualisation.vlans = [ 1 2 ];
      networking.useDHCP = false;
      # mkForce: drop the test framework's automatic 192.168.<vlan>.N addresses.
      networking.interfaces.eth1.ipv4.addresses = lib.mkForce [
        { address = routerWan; prefixLength = 24; }
      ];
      networking.interfaces.eth2.ipv4.addresses = lib.mkForce [
        { address = routerLan; prefixLength = 24; }
      ];
      networking.nftables.enable = true;
      networking.firewall.enable = true;
      # Refused, not dropped, so that failing connections fail fast.
      networking.firewall.rejectPackets = true;
      networking.nat = {
        enable = true;
        internalInterfaces = [ "eth2" ];
        externalInterface = "eth1";
      };
      services.natpmp-server = {
        enable = true;
        externalInterface = "eth1";
        listenInterfaces = [ "eth2" ];
        # eth2 is not trusted: only this opens UDP 5351 to the client.
        openFirewall = true;
        allowedPortRanges = [ { from = 8000; to = 8999; } ];
        logLevel = "debug";
      };
      environment.systemPackages = [ pkgs.nftables ];
    };

    client = { pkgs, ... }: {
      virtualisation.vlans = [ 2 ];
      networking.useDHCP = false;
      networking.interfaces.eth1.ipv4.addresses = lib.mkForce [
        { address = clientLan; prefixLength = 24; }
      ];
      networking.defaultGateway = routerLan;
      networking.firewall.allowedTCPPorts = [ 8000 ];
      environment.systemPackages = [ pkgs.libnatpmp ];
      systemd.services.answer = {
        description = "Answers on the port the test maps";
        wantedBy = [ "multi-user.target" ];
        serviceConfig.ExecStart = "${pkgs.python3}/bin/python3 -m http.server 8000 --directory ${answerDir}";
      };
    };

    wan = { pkgs, ... }: {
      virtualisation.vlans = [ 1 ];
      networking.useDHCP = false;
      networking.interfaces.eth1.ipv4.addresses = lib.mkForce [
        { address = wanHost; prefixLength = 24; }
      ];
      environment.systemPackages = [ pkgs.curl pkgs.libnatpmp ];
    };
  };

  testScript = ''
    start_all()

    router.wait_for_unit("network-online.target")
    router.wait_for_unit("nftables.service")
    router.wait_for_unit("natpmp-server.service")
    router.wait_until_succeeds("nft list table ip natpmp")
    client.wait_for_unit("network-online.target")
    client.wait_for_unit("answer.service")
    client.wait_for_open_port(8000)
    wan.wait_for_unit("network-online.target")

    with subtest("nothing is forwarded before a mapping"):
        wan.fail("${fetch}")

    with subtest("the WAN side gets no NAT-PMP answer"):
        wan.fail("timeout 10 natpmpc -g ${routerWan}")

    with subtest("the client learns the public address"):
        out = client.succeed("natpmpc -g ${routerLan}")
        assert "Public IP address : ${routerWan}" in out, out

    with subtest("a mapped port reaches the client from the WAN"):
        out = client.succeed("natpmpc -g ${routerLan} -a 8000 8000 tcp 600")
        assert "Mapped public port 8000 protocol TCP to local port 8000" in out, out
        out = wan.wait_until_succeeds("${fetch}")
        assert "hello from the LAN client" in out, out

    with subtest("the table survives an nftables reload"):
        # The reload flushes the ruleset; the daemon restores its table itself.
        router.succeed("systemctl restart nftables.service")
        router.wait_until_succeeds("nft list table ip natpmp | grep -q 8000")
        wan.wait_until_succeeds("${fetch}")

    with subtest("SIGHUP reloads and keeps the mapping"):
        router.succeed("systemctl reload natpmp-server.service")
        router.succeed("systemctl is-active natpmp-server.service")
        wan.wait_until_succeeds("${fetch}")

    with subtest("a restart keeps the mapping (state.json)"):
        router.succeed("systemctl restart natpmp-server.service")
        router.wait_for_unit("natpmp-server.service")
        wan.wait_until_succeeds("${fetch}")

    with subtest("lifetime 0 deletes the mapping"):
        client.succeed("natpmpc -g ${routerLan} -a 8000 8000 tcp 0")
        wan.fail("${fetch}")
  '';
})
