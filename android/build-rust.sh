#!/usr/bin/env bash
# Builds the Pooya Rust library (crate pooya-ffi) for the Android ABIs and generates the Kotlin
# bindings, for the Gradle module in this directory.
#
#   android/build-rust.sh            # shipping build (profile `mobile`, bindings/mobile.toml), all ABIs
#   PROFILE=dev android/build-rust.sh    # unoptimised, for debugging
#   ABIS="arm64-v8a" android/build-rust.sh
#
# Needs: the Android NDK (ANDROID_NDK_HOME, or ANDROID_HOME/ndk/<version>), cargo-ndk
# (`cargo install cargo-ndk --locked`) and the Rust targets
# (`rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`).
#
# Produces:
#   android/src/main/jniLibs/<abi>/libpooya_ffi.so     (stripped)
#   android/build/generated/uniffi/kotlin/ir/pooya/core/pooya_ffi.kt
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
profile="${PROFILE:-mobile}"
abis="${ABIS:-arm64-v8a armeabi-v7a x86_64}"
# API level the native code is linked against; matches minSdk in build.gradle.kts.
platform="${ANDROID_PLATFORM:-28}"

command -v cargo-ndk >/dev/null || { echo "cargo-ndk missing: cargo install cargo-ndk --locked" >&2; exit 1; }

cd "$root"
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
profile_args=(--profile "$profile")
[ "$profile" = mobile ] && profile_args=(--config bindings/mobile.toml --profile mobile)

triple_of() {
    case "$1" in
        arm64-v8a) echo aarch64-linux-android ;;
        armeabi-v7a) echo armv7-linux-androideabi ;;
        x86_64) echo x86_64-linux-android ;;
        x86) echo i686-linux-android ;;
        *) echo "unknown ABI $1" >&2; exit 1 ;;
    esac
}
# llvm-strip from the NDK cargo-ndk uses.
ndk="${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}"
if [ -z "$ndk" ] && [ -n "${ANDROID_HOME:-}" ]; then
    ndk="$(ls -d "$ANDROID_HOME"/ndk/* 2>/dev/null | sort -V | tail -1)"
fi
strip_tool="$(ls "$ndk"/toolchains/llvm/prebuilt/*/bin/llvm-strip 2>/dev/null | head -1 || true)"
[ -n "$strip_tool" ] || { echo "llvm-strip not found under the NDK ($ndk)" >&2; exit 1; }

for abi in $abis; do
    echo "==> cargo ndk $abi ($profile)"
    cargo ndk -t "$abi" --platform "$platform" build -p pooya-ffi --lib "${profile_args[@]}"
    dir="$profile"; [ "$profile" = dev ] && dir=debug
    mkdir -p "$here/src/main/jniLibs/$abi"
    cp "$target_dir/$(triple_of "$abi")/$dir/libpooya_ffi.so" "$here/src/main/jniLibs/$abi/"
    # The packaged library needs no symbols: uniffi's metadata is read from the host build below.
    "$strip_tool" --strip-all "$here/src/main/jniLibs/$abi/libpooya_ffi.so"
done

# The bindings come from a host build of the same sources (uniffi reads the metadata the
# library carries; it is identical on every target).
echo "==> uniffi-bindgen generate (Kotlin)"
cargo build -p pooya-ffi --features cli
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
