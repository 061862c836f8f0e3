#!/usr/bin/env bash
# Builds the Pooya Rust library (crate pooya-ffi) for the Android ABIs and generates the Kotlin
# bindings, for the Gradle module in this directory.
#
#   android/build-rust.sh            # release, all ABIs
#   PROFILE=debug android/build-rust.sh
#   ABIS="arm64-v8a" android/build-rust.sh
#
# Needs: the Android NDK (ANDROID_NDK_HOME, or ANDROID_HOME/ndk/<version>), cargo-ndk
# (`cargo install cargo-ndk --locked`) and the Rust targets
# (`rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`).
#
# Produces:
#   android/src/main/jniLibs/<abi>/libpooya_ffi.so     (stripped by cargo-ndk)
#   android/build/generated/uniffi/kotlin/ir/pooya/core/pooya_ffi.kt
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
profile="${PROFILE:-release}"
abis="${ABIS:-arm64-v8a armeabi-v7a x86_64}"
# API level the native code is linked against; matches minSdk in build.gradle.kts.
platform="${ANDROID_PLATFORM:-28}"

command -v cargo-ndk >/dev/null || { echo "cargo-ndk missing: cargo install cargo-ndk --locked" >&2; exit 1; }

cd "$root"
target_args=()
for abi in $abis; do target_args+=(-t "$abi"); done
profile_args=()
[ "$profile" = release ] && profile_args+=(--release)

echo "==> cargo ndk ($profile; $abis)"
cargo ndk "${target_args[@]}" --platform "$platform" -o "$here/src/main/jniLibs" \
    build -p pooya-ffi "${profile_args[@]}"

# The bindings come from a host build of the same sources (uniffi reads the metadata the
# library carries; it is identical on every target).
echo "==> uniffi-bindgen generate (Kotlin)"
cargo build -p pooya-ffi --features cli
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
case "$(uname -s)" in
    Darwin) host_lib="$target_dir/debug/libpooya_ffi.dylib" ;;
    *) host_lib="$target_dir/debug/libpooya_ffi.so" ;;
esac
out="$here/build/generated/uniffi/kotlin"
rm -rf "$out"
"$target_dir/debug/uniffi-bindgen" generate --library "$host_lib" --language kotlin --no-format --out-dir "$out"

echo "==> done"
find "$here/src/main/jniLibs" -name '*.so' -exec ls -l {} +
echo "$out/ir/pooya/core/pooya_ffi.kt"
