# nix/module.nix - NixOS module for natpmp-server (services.natpmp-server).
#
#   imports = [ ./nix/module.nix ];
#   services.natpmp-server = {
#     enable = true;
#     externalInterface = "eth0";
#     listenInterfaces = [ "br-lan" ];
#     openFirewall = true;
#   };
#
# Option names follow the earlier Go NAT-PMP module where it had them, so its
# configurations keep working (listenInterface becomes listenInterfaces).
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf mkMerge types;

  cfg = config.services.natpmp-server;

  # The daemon's own state directory; StateDirectory= below creates it.
  stateDir = "/var/lib/natpmp-server";

  portRange = types.submodule {
    options = {
      from = mkOption {
        type = types.port;
        description = "First port of the range.";
      };
      to = mkOption {
        type = types.port;
        description = "Last port of the range (inclusive).";
      };
    };
  };

  showRange = r: if r.from == r.to then toString r.from else "${toString r.from}-${toString r.to}";

  # Loopback and unix sockets are the only places the daemon serves without a token.
  httpIsLocal = lib.hasPrefix "/" cfg.http.listen || lib.hasPrefix "127." cfg.http.listen;
  httpSocketInRuntimeDir = lib.hasPrefix "/run/natpmp-server/" cfg.http.listen;

  # Tables other software rebuilds: the daemon deletes and recreates its table, so
  # sharing one of these would wipe their rules (iptables-nft uses ip nat/filter).
  foreignTables = [ "nat" "filter" "mangle" "raw" "security" "nixos-nat" "nixos-fw" ];

  args =
    lib.concatMap (i: [ "--listen-interface" i ]) cfg.listenInterfaces
    ++ [
      "--listen-port" (toString cfg.listenPort)
      "--external-interface" cfg.externalInterface
      "--nat-table" cfg.natTable
      "--nat-chain" cfg.natChain
      "--pinhole-mark" cfg.pinholeMark
      "--max-mappings-per-ip" (toString cfg.maxMappingsPerClient)
      "--default-lifetime" (toString cfg.defaultLifetime)
      "--max-lifetime" (toString cfg.maxLifetime)
      "--rate-limit" (toString cfg.rateLimit)
      "--state-dir" stateDir
      "--log-level" cfg.logLevel
    ]
    ++ lib.concatMap (r: [ "--allowed-ports" (showRange r) ]) cfg.allowedPortRanges
    ++ lib.concatMap (r: [ "--reserved-ports" (showRange r) ]) cfg.reservedPortRanges
    ++ lib.concatMap (r: [ "--rule" r ]) cfg.rules
    ++ lib.optionals (cfg.externalAddress != null) [ "--external-address" cfg.externalAddress ]
    ++ lib.optionals (cfg.upstreamGateway != null) [ "--upstream-gateway" cfg.upstreamGateway ]
    ++ lib.concatMap (s: [ "--stun-server" s ]) cfg.stun.servers
    ++ lib.optionals (cfg.stun.servers != [ ]) [ "--stun-keepalive" (toString cfg.stun.keepalive) ]
    ++ lib.optionals (cfg.stun.keepaliveServer != null) [ "--stun-keepalive-server" cfg.stun.keepaliveServer ]
    ++ lib.optional cfg.stun.allowFiltered "--stun-allow-filtered"
    ++ lib.optionals cfg.http.enable (
      [ "--http-listen" cfg.http.listen ]
      # %d is systemd's $CREDENTIALS_DIRECTORY, readable by the DynamicUser.
      ++ lib.optionals (cfg.http.tokenFile != null) [ "--http-token-file" "%d/http-token" ]
    )
    # "${...}" copies a hook given as a Nix path into the store, where the
    # sandboxed service can reach it (ProtectHome= hides /home).
    ++ lib.optionals (cfg.hook != null) [ "--hook" "${cfg.hook}" ]
    ++ [ "--hook-timeout" (toString cfg.hookTimeout) ]
    ++ cfg.extraArgs;
in
{
  imports = [
    # The Go module took a single interface.
    (lib.mkChangedOptionModule
      [ "services" "natpmp-server" "listenInterface" ]
      [ "services" "natpmp-server" "listenInterfaces" ]
      (c: [ c.services.natpmp-server.listenInterface ]))
  ];

  options.services.natpmp-server = {
    enable = mkEnableOption "the NAT-PMP (RFC 6886) port mapping daemon";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The natpmp-server package to run.";
    };

    externalInterface = mkOption {
      type = types.str;
      example = "eth0";
      description = "Interface with the public address; mapped ports are forwarded from it.";
    };

    listenInterfaces = mkOption {
      type = types.listOf types.str;
      example = [ "br-lan" ];
      description = "LAN interfaces to answer NAT-PMP requests on (1 to 16).";
    };

    listenPort = mkOption {
      type = types.port;
      default = 5351;
      description = "UDP port to answer on. RFC 6886 clients only use 5351.";
    };

    natTable = mkOption {
      type = types.strMatching "[A-Za-z0-9_-]{1,63}";
      default = "natpmp";
      description = ''
        nftables tables the daemon owns: `table ip` of this name (forwards) and
        `table ip6` of this name (IPv6 pinholes). It deletes and recreates
        both whole, so they must not be tables anything else uses.
      '';
    };

    natChain = mkOption {
      type = types.strMatching "[A-Za-z0-9_-]{1,63}";
      default = "prerouting";
      description = "Name of the prerouting chain in that table (not `postrouting`, which the daemon uses itself).";
    };

    pinholeMark = mkOption {
      type = types.strMatching "(0x[0-9a-fA-F]+|[0-9]+)(/(0x[0-9a-fA-F]+|[0-9]+))?";
      default = "0x1000000";
      description = ''
        MARK[/MASK]: the packet-mark bits an IPv6 pinhole (a PCP MAP from an
        IPv6 host) sets on what it admits. The forward chain must accept them;
        with `networking.nftables.enable` and `networking.firewall.filterForward`,
        `openPinholes` adds that rule.
      '';
    };

    openPinholes = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Accept, in the NixOS firewall's forward chain, what the daemon's IPv6
        pinholes mark (only with the nftables firewall and filterForward).
      '';
    };

    maxMappingsPerClient = mkOption {
      type = types.ints.between 1 131072;
      default = 100;
      description = "Mappings one client address may hold; more get result 4.";
    };

    defaultLifetime = mkOption {
      type = types.ints.between 1 4294967295;
      default = 3600;
      description = "Lifetime in seconds for requests that carry none.";
    };

    maxLifetime = mkOption {
      type = types.ints.between 1 4294967295;
      default = 86400;
      description = "Longest lifetime in seconds granted to a mapping.";
    };

    allowedPortRanges = mkOption {
      type = types.listOf portRange;
      default = [ { from = 1024; to = 65535; } ];
      example = [ { from = 6881; to = 6999; } { from = 51413; to = 51413; } ];
      description = "External ports that may be mapped.";
    };

    reservedPortRanges = mkOption {
      type = types.listOf portRange;
      default = [ ];
      example = [ { from = 8080; to = 8080; } ];
      description = ''
        External ports never handed out. Ports the router itself listens on
        are never handed out either, without being listed here.
      '';
    };

    rules = mkOption {
      type = types.listOf (types.strMatching
        "((allow|deny) [0-9]+(-[0-9]+)? [0-9.]+(/[0-9]+)? [0-9]+(-[0-9]+)?|third-party [0-9.]+(/[0-9]+)? [0-9.]+(/[0-9]+)?)");
      default = [ ];
      example = [ "allow 1024-65535 192.168.1.0/24 1024-65535" "deny 0-65535 0.0.0.0/0 0-65535" ];
      description = ''
        Per-client rules, miniupnpd's form: "allow|deny EXTERNAL CLIENT[/PREFIX] INTERNAL".
        The first rule that matches a mapping decides; once any rule is given, a mapping
        none allows is refused (NAT-PMP result 2, HTTP 403). Applied to every front end.
        "third-party SENDER[/PREFIX] HOST[/PREFIX]" lets SENDER map for HOST with PCP's
        THIRD_PARTY option, otherwise refused.
      '';
    };

    externalAddress = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "203.0.113.7";
      description = ''
        IPv4 address to report instead of the external interface's, for a
        router behind another NAT. Null: the interface's current address.
      '';
    };

    upstreamGateway = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "10.2.0.1";
      description = ''
        Upstream mode, for a router behind a second NAT that speaks NAT-PMP
        (a VPN provider's gateway, an ISP router): every port is also mapped
        at this gateway, and clients are told the gateway's address and port.
        externalInterface then names the interface facing the gateway, such
        as wg0.
      '';
    };

    stun = {
      servers = mkOption {
        type = types.listOf (types.strMatching "[A-Za-z0-9.-]+(:[0-9]+)?");
        default = [ ];
        example = [ "stun.example.net" "203.0.113.7:3478" ];
        description = ''
          STUN mode, for a router behind a carrier-grade NAT that maps and
          filters independently of the endpoint (full cone) and speaks no
          NAT-PMP: the public address is learnt from these STUN servers
          (HOST or HOST:PORT, tried in turn), and each mapping's port is
          opened and kept through the outer NAT, as natmap does. Empty: off.
        '';
      };
      keepalive = mkOption {
        type = types.ints.between 1 3600;
        default = 20;
        description = "Seconds between keep-alives of each binding; below the outer NAT's idle timeout.";
      };
      keepaliveServer = mkOption {
        type = types.nullOr (types.strMatching "[A-Za-z0-9.-]+(:[0-9]+)?");
        default = null;
        example = "keepalive.example.net:80";
        description = ''
          An HTTP server (HOST or HOST:PORT, port 80 by default) that each TCP
          binding also keeps a connection to, for STUN servers that close
          idle connections.
        '';
      };
      allowFiltered = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Make mappings through the outer NAT even when discovery (RFC 5780)
          says it filters or maps per destination, where forwards cannot be
          reached.
        '';
      };
    };

    rateLimit = mkOption {
      type = types.ints.between 0 1000000;
      default = 50;
      description = "Requests per second one client may send (bursts of twice that); 0 for no limit.";
    };

    logLevel = mkOption {
      type = types.enum [ "debug" "info" "warning" "error" ];
      default = "info";
      description = "Least severe message level to log.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open UDP {option}`listenPort` on the listen interfaces only (never on
        the external one).
      '';
    };

    http = {
      enable = mkEnableOption "the daemon's HTTP API";

      listen = mkOption {
        type = types.strMatching "/.+|[0-9]{1,3}(\\.[0-9]{1,3}){3}:[0-9]{1,5}";
        default = "127.0.0.1:8080";
        example = "/run/natpmp-server/http.sock";
        description = ''
          IPv4 `ADDRESS:PORT`, or the path of a unix socket. An address
          outside 127.0.0.0/8 needs {option}`http.tokenFile`. A socket
          under /run/natpmp-server is put in the service's runtime
          directory; only root can connect to it (the service runs as a
          DynamicUser).
        '';
      };

      tokenFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        example = "/run/secrets/natpmp-http-token";
        description = ''
          File whose first line is the bearer token (16 to 256 printable
          characters) the API asks for; it may be readable by root only.
          Give it as a string: a Nix path may already sit in the
          world-readable store (flakes copy their sources there). Read
          again at reload; a new file needs a restart (systemd copies it
          as a credential at start).
        '';
      };
    };

    hook = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "Executable run (without a shell) on every mapping change.";
    };

    hookTimeout = mkOption {
      type = types.ints.between 1 3600;
      default = 10;
      description = "Seconds after which a hook still running is killed.";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--config" "/etc/natpmp-server.conf" ];
      description = "Further command-line arguments for natpmp-server.";
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = cfg.listenInterfaces != [ ] && builtins.length cfg.listenInterfaces <= 16;
          message = "services.natpmp-server.listenInterfaces needs 1 to 16 LAN interfaces.";
        }
        {
          assertion = !(builtins.elem cfg.externalInterface cfg.listenInterfaces);
          message = "services.natpmp-server: externalInterface ${cfg.externalInterface} is also in listenInterfaces; the daemon never answers on the external interface.";
        }
        {
          assertion = cfg.stun.servers == [ ] || (cfg.upstreamGateway == null && cfg.externalAddress == null);
          message = "services.natpmp-server: stun.servers cannot be set with upstreamGateway or externalAddress; the STUN server tells the address.";
        }
        {
          assertion = cfg.upstreamGateway == null || cfg.externalAddress == null;
          message = "services.natpmp-server: externalAddress cannot be set with upstreamGateway; the gateway tells the address.";
        }
        {
          assertion = cfg.allowedPortRanges != [ ];
          # The daemon would fall back to 1024-65535, not to "nothing".
          message = "services.natpmp-server.allowedPortRanges is empty; to map nothing, disable the service.";
        }
        {
          assertion = lib.all (r: r.from <= r.to) (cfg.allowedPortRanges ++ cfg.reservedPortRanges);
          message = "services.natpmp-server: a port range has from > to.";
        }
        {
          assertion = cfg.defaultLifetime <= cfg.maxLifetime;
          message = "services.natpmp-server.defaultLifetime is above maxLifetime.";
        }
        {
          assertion = cfg.natChain != "postrouting";
          message = "services.natpmp-server.natChain cannot be \"postrouting\": the daemon uses that chain itself.";
        }
        {
          assertion = !(builtins.elem cfg.natTable foreignTables);
          message = "services.natpmp-server.natTable \"${cfg.natTable}\" belongs to iptables-nft or NixOS; the daemon replaces its table wholesale, so use a table of its own (default \"natpmp\").";
        }
        {
          assertion = !cfg.http.enable || httpIsLocal || cfg.http.tokenFile != null;
          message = "services.natpmp-server.http.listen ${cfg.http.listen} is not a loopback address or unix socket: set http.tokenFile (the daemon refuses to start without one).";
        }
      ];

      # Mapped ports are forwarded through the router.
      boot.kernel.sysctl."net.ipv4.ip_forward" = lib.mkDefault true;

      # No reloadTriggers and no hook into nftables.service, on purpose: the
      # daemon owns its own table and restores it from memory within 100 ms
      # when a ruleset reload (networking.nftables, nft flush ruleset) deletes
      # it. A changed command line restarts the unit; mappings survive in
      # state.json.
      systemd.services.natpmp-server = {
        description = "NAT-PMP port mapping daemon";
        documentation = [ "man:natpmp-server(8)" ];
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ]
          ++ lib.optional config.networking.nftables.enable "nftables.service";

        serviceConfig = {
          Type = "notify";
          ExecStart = lib.escapeShellArgs ([ "${cfg.package}/bin/natpmp-server" ] ++ args);
          # SIGHUP re-reads the configuration and reinstalls the table, keeping mappings.
          ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
          Restart = "on-failure";
          StateDirectory = "natpmp-server";
          RuntimeDirectory = mkIf (cfg.http.enable && httpSocketInRuntimeDir) "natpmp-server";
          # PID 1 reads the root-only token file and hands the DynamicUser a copy;
          # toString keeps a Nix path from being copied into the store.
          LoadCredential = mkIf (cfg.http.enable && cfg.http.tokenFile != null)
            "http-token:${toString cfg.http.tokenFile}";

          # Hardening, as in systemd/natpmp-server.service.
          DynamicUser = true;
          AmbientCapabilities = [ "CAP_NET_ADMIN" ];
          CapabilityBoundingSet = [ "CAP_NET_ADMIN" ];
          NoNewPrivileges = true;
          ProtectSystem = "strict";
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          ProtectKernelTunables = true;
          ProtectKernelModules = true;
          ProtectControlGroups = true;
          RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_NETLINK" "AF_UNIX" ];
          RestrictNamespaces = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          ProtectClock = true;
          ProtectKernelLogs = true;
          ProtectHostname = true;
          ProtectProc = "invisible";
          ProcSubset = "pid";
          PrivateMounts = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          RemoveIPC = true;
          UMask = "0027";
          SystemCallArchitectures = "native";
          SystemCallFilter = [ "@system-service" "~@privileged @resources" ];
          SystemCallErrorNumber = "EPERM";
          # Not set, on purpose: PrivateNetwork= and PrivateUsers= would take
          # away the host network and CAP_NET_ADMIN, which the daemon exists to
          # use; IPAddressAllow= cannot know the LAN's address ranges.
        };
      };
    }

    (mkIf (cfg.openPinholes && config.networking.nftables.enable && config.networking.firewall.filterForward) {
      networking.firewall.extraForwardRules =
        let m = lib.splitString "/" cfg.pinholeMark; mask = lib.last m;
        in "meta mark & ${mask} == ${lib.head m} accept comment \"natpmp-server pinholes\"";
    })

    (mkIf cfg.openFirewall {
      # Per interface, so the WAN side never sees the port.
      networking.firewall.interfaces = lib.genAttrs cfg.listenInterfaces (_: {
        allowedUDPPorts = [ cfg.listenPort ];
      });
    })
  ]);
}
