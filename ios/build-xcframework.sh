#!/usr/bin/env bash
# Builds the Pooya Rust library (crate pooya-ffi) for iOS devices, the iOS simulator and macOS,
# packs it as build/PooyaCoreFFI.xcframework, and places the generated Swift API in
# Sources/PooyaCore/ (PooyaCore.swift, PooyaCoreModel.swift, PooyaProtocol.swift), so that
# `swift build` / `swift test` and Xcode can use the package in this directory. macOS only (needs Xcode's xcodebuild and lipo).
#
#   ios/build-xcframework.sh             # shipping build (profile `mobile`, bindings/mobile.toml)
#   PROFILE=dev ios/build-xcframework.sh
#
# Needs: rustup targets aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios
#        aarch64-apple-darwin x86_64-apple-darwin.
set -euo pipefail

[ "$(uname -s)" = Darwin ] || { echo "build-xcframework.sh runs on macOS (Xcode)" >&2; exit 1; }

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
profile="${PROFILE:-mobile}"
export IPHONEOS_DEPLOYMENT_TARGET="${IPHONEOS_DEPLOYMENT_TARGET:-15.0}"
export MACOSX_DEPLOYMENT_TARGET="${MACOSX_DEPLOYMENT_TARGET:-12.0}"

cd "$root"
profile_args=(--profile "$profile")
[ "$profile" = mobile ] && profile_args=(--config bindings/mobile.toml --profile mobile)
profile_dir="$profile"; [ "$profile" = dev ] && profile_dir=debug
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
for t in "${targets[@]}"; do
    echo "==> cargo build $t ($profile)"
    cargo build -p pooya-ffi --lib --target "$t" "${profile_args[@]}"
done
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
lib() { echo "$target_dir/$1/$profile_dir/libpooya_ffi.a"; }

echo "==> uniffi-bindgen generate (Swift)"
cargo build -p pooya-ffi --features cli
build="$here/build"
rm -rf "$build"
mkdir -p "$build/swift" "$build/headers" "$build/sim" "$build/macos"
"$target_dir/debug/uniffi-bindgen" generate --library "$target_dir/debug/libpooya_ffi.dylib" \
    --language swift --out-dir "$build/swift"
# One Swift file and one C header per crate with FFI items: pooya-ffi (PooyaCore), and the
# records pooya-core (PooyaCoreModel) and pooya-protocol (PooyaProtocol) derive for it. All
# Swift files are compiled into the one module PooyaCore (their helpers are fileprivate), and
# all headers make the one C module PooyaCoreFFI (shared declarations are guarded).
headers=(PooyaCoreFFI.h PooyaCoreModelFFI.h PooyaProtocolFFI.h)
for h in "${headers[@]}"; do cp "$build/swift/$h" "$build/headers/"; done
# An XCFramework's headers carry the module map under its conventional name; it lists every
# header (uniffi writes pooya-ffi's alone).
{
    echo "module PooyaCoreFFI {"
    for h in "${headers[@]}"; do echo "    header \"$h\""; done
    echo "    export *"
    echo "}"
} > "$build/headers/module.modulemap"
for f in PooyaCore PooyaCoreModel PooyaProtocol; do
    cp "$build/swift/$f.swift" "$here/Sources/PooyaCore/$f.swift"
done

echo "==> lipo (simulator: arm64 + x86_64; macOS: arm64 + x86_64)"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$build/sim/libpooya_ffi.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$build/macos/libpooya_ffi.a"

echo "==> xcodebuild -create-xcframework"
xcodebuild -create-xcframework \
    -library "$(lib aarch64-apple-ios)" -headers "$build/headers" \
    -library "$build/sim/libpooya_ffi.a" -headers "$build/headers" \
    -library "$build/macos/libpooya_ffi.a" -headers "$build/headers" \
    -output "$build/PooyaCoreFFI.xcframework"

echo "==> done: $build/PooyaCoreFFI.xcframework and Sources/PooyaCore/*.swift"
echo "    test: (cd ios && swift test)   # macOS slice; iOS: xcodebuild test -scheme PooyaCore -destination 'platform=iOS Simulator,name=iPhone 15'"
