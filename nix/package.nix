# nix/package.nix - natpmp-server for nixpkgs' callPackage.
{ lib, stdenv, meson, ninja, pkg-config, libevent, libnftnl, libmnl, json_c }:

stdenv.mkDerivation {
  pname = "natpmp-server";
  version = "0.1.0";
  # Without the local build*/ directories: meson would take one for a configured build.
  src = lib.cleanSourceWith {
    src = lib.cleanSource ./..;
    filter = path: type: !(type == "directory" && lib.hasPrefix "build" (baseNameOf path));
  };
  nativeBuildInputs = [ meson ninja pkg-config ];
  buildInputs = [ libevent libnftnl libmnl json_c ];
  # The tests need root and network namespaces; they run in the project's CI.
  mesonFlags = [ ];
  meta = {
    description = "NAT-PMP (RFC 6886) server for Linux routers, with nftables";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
    mainProgram = "natpmp-server";
  };
}
