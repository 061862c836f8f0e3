//! The Kotlin and Swift bindings step of `cargo xtask`: build `pooya-ffi`,
//! generate its bindings, compile and run the Kotlin tests on this
//! machine's JVM, and check that the Swift bindings are produced.
//!
//! Entry points, called from `main.rs` with its [`Context`]:
//! - [`run`]: installs what is missing, builds the unstripped debug
//!   library, generates Kotlin and Swift bindings with the workspace's
//!   `uniffi-bindgen`, compiles the generated Kotlin, the JVM-only Android
//!   shells and the tests under `bindings/tests/kotlin/` with kotlinc, and
//!   runs them with JUnit 4. Any failing test fails the step.
//! - [`bench`]: the Kotlin → Rust call benchmark (release library) and the
//!   stripped x86_64 `cdylib` size with a breakdown.
//!
//! Tools are installed idempotently under `.tools/` (gitignored): kotlinc
//! from the npm package `kotlin-compiler` (pinned), and Debian's
//! `libjna-java` and `junit4` through apt-get when their jars are missing.
//! Outputs go to `<target>/pooya-ffi-jvm/`.
//!
//! Errors are `String`s like the rest of xtask; failures of the underlying
//! I/O are converted at the entry points.

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::Context;

/// The pinned Kotlin compiler (npm package `kotlin-compiler`).
const KOTLIN_VERSION: &str = "2.4.20";
/// Debian's JNA and JUnit 4 jars, and the packages that carry them.
const JNA_JAR: &str = "/usr/share/java/jna.jar";
const JUNIT_JAR: &str = "/usr/share/java/junit4.jar";
const HAMCREST_JARS: [&str; 2] = [
    "/usr/share/java/hamcrest-core.jar",
    "/usr/share/java/hamcrest.jar",
];
const APT_PACKAGES: [&str; 2] = ["libjna-java", "junit4"];
/// kotlinx-coroutines for the JVM, in the Kotlin compiler's `lib/`.
const COROUTINES_JAR: &str = "kotlinx-coroutines-core-jvm.jar";

/// Android shell sources that use only the JVM (no `android.*`), so they
/// are compiled and tested here as well.
const JVM_SHELLS: [&str; 2] = [
    "android/src/main/kotlin/ir/pooya/android/HttpUrlConnectionTransport.kt",
    "android/src/main/kotlin/ir/pooya/android/SystemClock.kt",
];
/// Where the Kotlin tests live.
const KOTLIN_TESTS: &str = "bindings/tests/kotlin";
/// The Kotlin benchmark program (`fun main`).
const KOTLIN_BENCH: &str = "bindings/benches/kotlin";
/// The generated Kotlin files, relative to the Kotlin output directory:
/// the FFI crate's API, and the records pooya-core and pooya-protocol
/// derive for it (feature `uniffi`), each crate in its own package.
const GENERATED_KOTLIN: [&str; 3] = [
    "ir/pooya/core/pooya_ffi.kt",
    "ir/pooya/core/model/pooya_core.kt",
    "ir/pooya/protocol/pooya_protocol.kt",
];
/// The generated Swift files: one Swift source per crate (all compiled
/// into the module `PooyaCore`), their C headers (one C module
/// `PooyaCoreFFI`), and the FFI crate's module map.
const GENERATED_SWIFT: [&str; 7] = [
    "PooyaCore.swift",
    "PooyaCoreModel.swift",
    "PooyaProtocol.swift",
    "PooyaCoreFFI.h",
    "PooyaCoreModelFFI.h",
    "PooyaProtocolFFI.h",
    "PooyaCoreFFI.modulemap",
];
/// The shipping build: `cargo build --config bindings/mobile.toml --profile
/// mobile` (fat LTO, one codegen unit, SQLite at `-Os` without the
/// extensions the vault does not use). Benchmarks and sizes use it.
const MOBILE_CONFIG: &str = "bindings/mobile.toml";
/// The profile `bindings/mobile.toml` defines.
const MOBILE_PROFILE: &str = "mobile";
/// Library file name on Linux.
const LIB_NAME: &str = "libpooya_ffi.so";
/// The issuer binary the Kotlin tests start on 127.0.0.1 (system property
/// `pooya.issuer.bin`).
const ISSUER_BIN: &str = "pooya-issuer";
/// Test-side Kotlin helpers the benchmark also compiles (the hooks and the
/// issuer process; no JUnit in them).
const SHARED_TEST_HELPERS: [&str; 2] = [
    "bindings/tests/kotlin/ir/pooya/core/Hooks.kt",
    "bindings/tests/kotlin/ir/pooya/core/IssuerProcess.kt",
];

fn fail(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// Runs the Kotlin tests and checks the Swift bindings (see the module
/// documentation). Prints `kotlin: N passed, M failed`.
///
/// # Errors
/// When an install, the build, the generation or compilation fails, or
/// when any Kotlin test fails.
pub fn run(ctx: &Context) -> Result<(), String> {
    test_bindings(ctx).map_err(|e| format!("kotlin bindings: {e}"))
}

/// Measures Kotlin → Rust calls against the shipping (`mobile` profile)
/// library (medians over 10,000 calls after warm-up, printed by the Kotlin
/// program) and reports the stripped x86_64 Linux `cdylib` size with what
/// takes the space.
///
/// # Errors
/// When a build, the generation, compilation or the benchmark fails.
pub fn bench(ctx: &Context) -> Result<(), String> {
    bench_bindings(ctx).map_err(|e| format!("kotlin bench: {e}"))
}

fn test_bindings(ctx: &Context) -> io::Result<()> {
    let root = ctx.root.as_path();
    let started = Instant::now();
    let tools = Tools::ensure(ctx)?;
    let target = target_dir(root)?;
    let built = build_debug(root, &target)?;
    let out = target.join("pooya-ffi-jvm");
    let gen_kotlin = generate(root, &built, "kotlin", &out.join("kotlin"))?;
    check_kotlin_generated(&gen_kotlin)?;
    let gen_swift = generate(root, &built, "swift", &out.join("swift"))?;
    check_swift_generated(&gen_swift)?;

    let mut sources = kotlin_files(&gen_kotlin)?;
    for shell in JVM_SHELLS {
        let p = root.join(shell);
        let text = fs::read_to_string(&p)?;
        if text
            .lines()
            .any(|l| l.trim_start().starts_with("import android"))
        {
            return Err(fail(format!(
                "{shell} must not use android.* (it is tested on the JVM)"
            )));
        }
        sources.push(p);
    }
    let tests = kotlin_files(&root.join(KOTLIN_TESTS))?;
    let test_classes = junit_classes(&tests)?;
    if test_classes.is_empty() {
        return Err(fail(format!("no JUnit test classes under {KOTLIN_TESTS}")));
    }
    sources.extend(tests);
    let classes = out.join("test-classes");
    tools.compile(&sources, &classes)?;

    let lib_dir = built.lib.parent().unwrap_or(&target).to_path_buf();
    let (ok, output) = tools.run_junit(&classes, &lib_dir, &built.issuer, &test_classes)?;
    let (passed, failed) = junit_counts(&output);
    println!("kotlin: {passed} passed, {failed} failed");
    println!("kotlin step took {:.1} s", started.elapsed().as_secs_f64());
    if !ok || failed > 0 || passed == 0 {
        return Err(fail("Kotlin tests failed"));
    }
    Ok(())
}

fn bench_bindings(ctx: &Context) -> io::Result<()> {
    let root = ctx.root.as_path();
    let tools = Tools::ensure(ctx)?;
    let target = target_dir(root)?;
    let built = build_debug(root, &target)?;
    let out = target.join("pooya-ffi-jvm");
    let gen_kotlin = generate(root, &built, "kotlin", &out.join("kotlin"))?;
    check_kotlin_generated(&gen_kotlin)?;

    cargo(
        root,
        &[
            "build",
            "-p",
            "pooya-ffi",
            "--config",
            MOBILE_CONFIG,
            "--profile",
            MOBILE_PROFILE,
        ],
    )?;
    let release_dir = target.join(MOBILE_PROFILE);
    let release_lib = release_dir.join(LIB_NAME);

    let mut sources = kotlin_files(&gen_kotlin)?;
    sources.extend(kotlin_files(&root.join(KOTLIN_BENCH))?);
    sources.extend(SHARED_TEST_HELPERS.iter().map(|h| root.join(h)));
    sources.extend(JVM_SHELLS.iter().map(|h| root.join(h)));
    let classes = out.join("bench-classes");
    tools.compile(&sources, &classes)?;
    let status = Command::new("java")
        .arg(format!("-Djna.library.path={}", release_dir.display()))
        .arg(format!("-Dpooya.issuer.bin={}", built.issuer.display()))
        .arg("-cp")
        .arg(tools.classpath(&classes))
        .arg("ir.pooya.bench.FfiBenchKt")
        .status()?;
    if !status.success() {
        return Err(fail("the Kotlin benchmark failed"));
    }

    library_size(&release_lib, &out)?;
    sqlite_size(&release_dir)
}

/// A built library, the generator built beside it, and the issuer binary
/// the tests run against.
struct Built {
    lib: PathBuf,
    bindgen: PathBuf,
    issuer: PathBuf,
}

/// The paths of the installed tools.
struct Tools {
    kotlinc: PathBuf,
    kotlin_lib: PathBuf,
    jars: Vec<PathBuf>,
}

impl Tools {
    /// Installs what is missing and returns the tool paths.
    fn ensure(ctx: &Context) -> io::Result<Self> {
        let tools_dir = ctx.tools.clone();
        fs::create_dir_all(&tools_dir)?;
        let home = tools_dir.join(format!("kotlin-compiler-{KOTLIN_VERSION}"));
        let kotlinc = home.join("bin").join("kotlinc");
        if !kotlinc.is_file() {
            install_kotlinc(&tools_dir, &home)?;
        }
        let hamcrest = || HAMCREST_JARS.iter().find(|p| Path::new(p).is_file());
        if !Path::new(JNA_JAR).is_file() || !Path::new(JUNIT_JAR).is_file() || hamcrest().is_none()
        {
            crate::apt_install(ctx, &APT_PACKAGES).map_err(fail)?;
        }
        let hamcrest = hamcrest().ok_or_else(|| fail("hamcrest jar missing after apt-get"))?;
        for jar in [JNA_JAR, JUNIT_JAR] {
            if !Path::new(jar).is_file() {
                return Err(fail(format!("{jar} missing after apt-get")));
            }
        }
        // kotlinx-coroutines (the generated Kotlin's suspend functions, the
        // suspend Transport, the coroutine tests) ships in the compiler's lib.
        let coroutines = home.join("lib").join(COROUTINES_JAR);
        if !coroutines.is_file() {
            return Err(fail(format!("{} missing", coroutines.display())));
        }
        Ok(Self {
            kotlinc,
            kotlin_lib: home.join("lib"),
            jars: vec![
                JNA_JAR.into(),
                JUNIT_JAR.into(),
                PathBuf::from(hamcrest),
                coroutines,
            ],
        })
    }

    /// The runtime class path: the compiled classes, the Kotlin runtime
    /// libraries, JNA and JUnit.
    fn classpath(&self, classes: &Path) -> String {
        let mut parts = vec![classes.to_path_buf()];
        for jar in [
            "kotlin-stdlib.jar",
            "kotlin-test.jar",
            "kotlin-test-junit.jar",
        ] {
            let p = self.kotlin_lib.join(jar);
            if p.is_file() {
                parts.push(p);
            }
        }
        parts.extend(self.jars.iter().cloned());
        join_paths(&parts)
    }

    /// Compiles `sources` into `classes` with kotlinc, unless the same
    /// sources (by content) were compiled there last time.
    fn compile(&self, sources: &[PathBuf], classes: &Path) -> io::Result<()> {
        let mut hasher = DefaultHasher::new();
        KOTLIN_VERSION.hash(&mut hasher);
        for s in sources {
            s.hash(&mut hasher);
            fs::read(s)?.hash(&mut hasher);
        }
        let stamp = format!("{:016x}", hasher.finish());
        let stamp_file = classes.with_extension("stamp");
        if fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str())
            && classes.is_dir()
        {
            println!("kotlinc: sources unchanged, reusing {}", classes.display());
            return Ok(());
        }
        if classes.exists() {
            fs::remove_dir_all(classes)?;
        }
        fs::create_dir_all(classes)?;
        let _ = fs::remove_file(&stamp_file);
        let t = Instant::now();
        println!("kotlinc: compiling {} files", sources.len());
        let status = Command::new(&self.kotlinc)
            .arg("-jvm-target")
            .arg("17")
            .arg("-nowarn")
            .arg("-cp")
            .arg(join_paths(&self.jars))
            .arg("-d")
            .arg(classes)
            .args(sources)
            .status()?;
        if !status.success() {
            return Err(fail("kotlinc failed"));
        }
        println!("kotlinc: done in {:.1} s", t.elapsed().as_secs_f64());
        fs::write(&stamp_file, stamp)
    }

    /// Runs JUnit 4 on `test_classes` (the issuer binary named in the
    /// system property `pooya.issuer.bin`); returns whether it succeeded
    /// and what it printed (also echoed).
    fn run_junit(
        &self,
        classes: &Path,
        lib_dir: &Path,
        issuer: &Path,
        test_classes: &[String],
    ) -> io::Result<(bool, String)> {
        let output = Command::new("java")
            .arg(format!("-Djna.library.path={}", lib_dir.display()))
            .arg(format!("-Dpooya.issuer.bin={}", issuer.display()))
            .arg("-cp")
            .arg(self.classpath(classes))
            .arg("org.junit.runner.JUnitCore")
            .args(test_classes)
            .stderr(Stdio::inherit())
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        io::stdout().write_all(text.as_bytes())?;
        Ok((output.status.success(), text))
    }
}

/// `npm pack kotlin-compiler@VERSION` into `.tools/`, untarred into
/// `home` through a staging directory so an interrupted install is
/// retried rather than half-used.
fn install_kotlinc(tools_dir: &Path, home: &Path) -> io::Result<()> {
    let t = Instant::now();
    println!(
        "installing kotlinc {KOTLIN_VERSION} from npm into {}",
        home.display()
    );
    let staging = tools_dir.join(format!("kotlin-compiler-{KOTLIN_VERSION}.partial"));
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    fs::create_dir_all(&staging)?;
    let out = Command::new("npm")
        .args([
            "pack",
            "--silent",
            &format!("kotlin-compiler@{KOTLIN_VERSION}"),
        ])
        .current_dir(&staging)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(fail("npm pack kotlin-compiler failed"));
    }
    let tarball = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find(|l| l.trim().ends_with(".tgz"))
        .map(|l| l.trim().to_owned())
        .ok_or_else(|| fail("npm pack printed no tarball name"))?;
    exec(
        Command::new("tar")
            .args(["-xzf", &tarball])
            .current_dir(&staging),
    )?;
    let package = staging.join("package");
    let bin = package.join("bin");
    for entry in fs::read_dir(&bin)? {
        let path = entry?.path();
        let mut perms = fs::metadata(&path)?.permissions();
        perms.set_mode(perms.mode() | 0o755);
        fs::set_permissions(&path, perms)?;
    }
    if !bin.join("kotlinc").is_file() || !package.join("lib").join("kotlin-stdlib.jar").is_file() {
        return Err(fail(
            "the kotlin-compiler package has no bin/kotlinc or lib/kotlin-stdlib.jar",
        ));
    }
    if home.exists() {
        fs::remove_dir_all(home)?;
    }
    fs::rename(&package, home)?;
    fs::remove_dir_all(&staging)?;
    println!("kotlinc installed in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Runs a command, failing on a non-zero exit.
fn exec(cmd: &mut Command) -> io::Result<()> {
    let status = cmd.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(fail(format!("{cmd:?} failed with {status}")))
    }
}

fn cargo(root: &Path, args: &[&str]) -> io::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    exec(Command::new(cargo).args(args).current_dir(root))
}

/// The workspace's target directory (honours `CARGO_TARGET_DIR` and
/// configuration, through `cargo metadata`).
fn target_dir(root: &Path) -> io::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(fail("cargo metadata failed"));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let key = "\"target_directory\":\"";
    let start = text
        .find(key)
        .map(|i| i + key.len())
        .ok_or_else(|| fail("cargo metadata has no target_directory"))?;
    let end = text[start..]
        .find('"')
        .ok_or_else(|| fail("cargo metadata: unterminated target_directory"))?;
    Ok(PathBuf::from(
        text[start..start + end].replace("\\\\", "\\"),
    ))
}

/// Builds the unstripped debug library and `uniffi-bindgen` (the `cli`
/// feature enables it), then the `pooya-issuer` binary. Two cargo runs, so
/// each package keeps the feature set its own builds use and neither
/// forces the other's dependencies to rebuild.
fn build_debug(root: &Path, target: &Path) -> io::Result<Built> {
    cargo(root, &["build", "-p", "pooya-ffi", "--features", "cli"])?;
    cargo(root, &["build", "-p", "pooya-issuer", "--bin", ISSUER_BIN])?;
    let dir = target.join("debug");
    let built = Built {
        lib: dir.join(LIB_NAME),
        bindgen: dir.join("uniffi-bindgen"),
        issuer: dir.join(ISSUER_BIN),
    };
    for p in [&built.lib, &built.bindgen, &built.issuer] {
        if !p.is_file() {
            return Err(fail(format!("{} was not built", p.display())));
        }
    }
    Ok(built)
}

/// `uniffi-bindgen generate --library LIB --language LANG --no-format
/// --out-dir OUT`, run from the workspace so `bindings/uniffi.toml` is
/// found. Clears `out` first so stale files cannot pass the checks.
fn generate(root: &Path, built: &Built, language: &str, out: &Path) -> io::Result<PathBuf> {
    if out.exists() {
        fs::remove_dir_all(out)?;
    }
    fs::create_dir_all(out)?;
    exec(
        Command::new(&built.bindgen)
            .arg("generate")
            .arg("--library")
            .arg(&built.lib)
            .args(["--language", language, "--no-format", "--out-dir"])
            .arg(out)
            .current_dir(root),
    )?;
    Ok(out.to_path_buf())
}

/// The generated Kotlin exists and declares the public API the tests and
/// the shells rely on, each part in its package.
fn check_kotlin_generated(dir: &Path) -> io::Result<()> {
    let read = |name: &str| {
        let file = dir.join(name);
        fs::read_to_string(&file)
            .map_err(|e| fail(format!("{} not generated: {e}", file.display())))
    };
    let [api, model, protocol] = GENERATED_KOTLIN;
    let wanted: [(&str, &[&str]); 3] = [
        (
            api,
            &[
                "package ir.pooya.core",
                "sealed class PooyaException",
                "public interface DeviceKeystore",
                "public interface BiometricGate",
                "public interface Transport",
                "suspend fun `postJson`(",
                "suspend fun `addCard`(",
                "suspend fun `syncTime`(",
                "suspend fun `removeCard`(",
                "suspend fun `sync`(",
                "public interface Clock",
                "open class PooyaApp",
                "data class PinInfo",
                "data class VaultState",
                // The derived records, used from the other packages.
                "ir.pooya.core.model.CardInfo",
                "ir.pooya.protocol.TxType",
            ],
        ),
        (
            model,
            &[
                "package ir.pooya.core.model",
                "data class CardInfo",
                "data class ActivatedCard",
                "data class TimeSyncInfo",
                "data class AccountInfo",
            ],
        ),
        (
            protocol,
            &[
                "package ir.pooya.protocol",
                "enum class TxType",
                "enum class CardAppStatus",
                "sealed class OtpAccountKind",
            ],
        ),
    ];
    for (name, needles) in wanted {
        let text = read(name)?;
        for needle in needles {
            if !text.contains(needle) {
                return Err(fail(format!("generated {name} lacks `{needle}`")));
            }
        }
    }
    Ok(())
}

/// The Swift bindings are produced: a Swift file and a C header per
/// crate and the module map, with the API the XCTests use (no Swift
/// compiler here).
fn check_swift_generated(dir: &Path) -> io::Result<()> {
    let mut swift = String::new();
    for name in GENERATED_SWIFT {
        let p = dir.join(name);
        let text = fs::read_to_string(&p)
            .map_err(|e| fail(format!("{} not generated: {e}", p.display())))?;
        if text.is_empty() {
            return Err(fail(format!("{} is empty", p.display())));
        }
        if name.ends_with(".swift") {
            swift.push_str(&text);
        }
    }
    // uniffi 0.32 writes `async throws  -> T` (two spaces): compare with
    // runs of whitespace collapsed, so the check is about the signature.
    let swift = swift.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "import PooyaCoreFFI",
        "enum PooyaError: Swift.Error",
        "public protocol DeviceKeystore",
        "public protocol BiometricGate",
        "public protocol Transport",
        "func postJson(url: String, body: Data, timeoutMs: UInt64) async throws -> HttpResponse",
        "func addCard(issuer: String, code: String, label: String?) async throws -> ActivatedCard",
        "func syncTime(issuer: String) async throws -> TimeSyncInfo",
        "func removeCard(cardId: Int64, password: String) async throws -> CardRemovalInfo",
        "func sync(issuer: String) async throws -> CardSyncInfo",
        "public protocol Clock",
        "public func parseAmount(",
        "public func checkDeviceKeystore(",
        "public func noop(",
        "open class PooyaApp",
        "public convenience init(vaultPath: String, deviceLabel: String, keystore: DeviceKeystore, transport: Transport, biometric: BiometricGate? = nil, clock: Clock? = nil",
        "func secondPin(cardId: Int64)",
        "public struct CardInfo",
        "public struct PinInfo",
        "public struct VaultState",
        "public enum TxType",
        "func defaultVaultSettings()",
    ] {
        if !swift.contains(needle) {
            return Err(fail(format!("generated Swift lacks `{needle}`")));
        }
    }
    let modulemap = fs::read_to_string(dir.join("PooyaCoreFFI.modulemap"))?;
    if !modulemap.contains("module PooyaCoreFFI") {
        return Err(fail("generated module map does not declare PooyaCoreFFI"));
    }
    println!(
        "swift: {} generated in {}",
        GENERATED_SWIFT.join(", "),
        dir.display()
    );
    Ok(())
}

/// Every `.kt` file under `dir`, sorted.
fn kotlin_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in
            fs::read_dir(&d).map_err(|e| fail(format!("cannot read {}: {e}", d.display())))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "kt") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The fully qualified names of the top-level classes named `…Test` in
/// files that hold JUnit tests (`@Test`); helpers in those files are not
/// test classes.
fn junit_classes(files: &[PathBuf]) -> io::Result<Vec<String>> {
    let mut classes = Vec::new();
    for f in files {
        let text = fs::read_to_string(f)?;
        if !text.contains("@Test") {
            continue;
        }
        let package = text
            .lines()
            .find_map(|l| l.strip_prefix("package "))
            .map(|p| p.trim().to_owned());
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("class ") else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name.ends_with("Test") {
                classes.push(match &package {
                    Some(p) => format!("{p}.{name}"),
                    None => name,
                });
            }
        }
    }
    Ok(classes)
}

/// Passed and failed counts from JUnit 4's closing lines: `OK (N tests)`
/// or `Tests run: N,  Failures: M`.
fn junit_counts(output: &str) -> (u64, u64) {
    let number_after = |line: &str, key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    };
    for line in output.lines().rev() {
        if line.starts_with("OK (") {
            return (number_after(line, "OK (").unwrap_or(0), 0);
        }
        if line.starts_with("Tests run:") {
            let run = number_after(line, "Tests run:").unwrap_or(0);
            let failed = number_after(line, "Failures:").unwrap_or(0);
            return (run.saturating_sub(failed), failed);
        }
    }
    (0, 0)
}

fn join_paths(parts: &[PathBuf]) -> String {
    parts
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Strips a copy of the release library and prints its size, its
/// sections, and the crates whose code takes the most space (from the
/// unstripped copy's symbol table).
fn library_size(release_lib: &Path, out: &Path) -> io::Result<()> {
    let stripped = out.join("libpooya_ffi.stripped.so");
    fs::copy(release_lib, &stripped)?;
    exec(Command::new("strip").arg("--strip-all").arg(&stripped))?;
    let size = fs::metadata(&stripped)?.len();
    println!(
        "\nstripped cdylib (x86_64 Linux, release): {} bytes ({:.2} MiB) at {}",
        size,
        size as f64 / 1_048_576.0,
        stripped.display()
    );

    let sections = Command::new("size").arg("-A").arg(&stripped).output()?;
    println!("\nlargest sections (size -A):");
    let mut rows: Vec<(u64, String)> = String::from_utf8_lossy(&sections.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?;
            let sz = it.next()?.parse().ok()?;
            name.starts_with('.').then(|| (sz, name.to_owned()))
        })
        .collect();
    rows.sort_by(|a, b| b.cmp(a));
    for (sz, name) in rows.iter().take(8) {
        println!("  {name:<20} {sz:>10}");
    }

    let nm = Command::new("nm")
        .args(["--size-sort", "-S", "-C"])
        .arg(release_lib)
        .output()?;
    let mut by_crate: BTreeMap<String, u64> = BTreeMap::new();
    for line in String::from_utf8_lossy(&nm.stdout).lines() {
        let mut it = line.splitn(4, ' ');
        let (Some(_addr), Some(sz), Some(kind), Some(name)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        if !matches!(kind, "t" | "T" | "r" | "R" | "d" | "D") {
            continue;
        }
        let Ok(sz) = u64::from_str_radix(sz, 16) else {
            continue;
        };
        *by_crate.entry(crate_of(name)).or_default() += sz;
    }
    let total: u64 = by_crate.values().sum();
    let mut crates: Vec<(u64, String)> = by_crate.into_iter().map(|(k, v)| (v, k)).collect();
    crates.sort_by(|a, b| b.cmp(a));
    println!("\nsymbol bytes by crate (nm -S -C on the unstripped release library, code + data):");
    for (sz, name) in crates.iter().take(15) {
        println!(
            "  {name:<28} {sz:>9}  {:>5.1}%",
            *sz as f64 * 100.0 / total.max(1) as f64
        );
    }
    println!("  {:<28} {total:>9}", "total in symbols");
    Ok(())
}

/// Prints the size of the bundled SQLite object the library links (the
/// newest `libsqlite3.a` libsqlite3-sys built for the profile): SQLite is
/// one C object, linked whole, so its sections are what it adds.
fn sqlite_size(profile_dir: &Path) -> io::Result<()> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in fs::read_dir(profile_dir.join("build"))? {
        let dir = entry?.path();
        let is_sqlite = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("libsqlite3-sys-"));
        let archive = dir.join("out").join("libsqlite3.a");
        if !is_sqlite || !archive.is_file() {
            continue;
        }
        let modified = fs::metadata(&archive)?.modified()?;
        if newest.as_ref().is_none_or(|(t, _)| modified > *t) {
            newest = Some((modified, archive));
        }
    }
    let Some((_, archive)) = newest else {
        println!(
            "
SQLite: no libsqlite3.a under {}",
            profile_dir.display()
        );
        return Ok(());
    };
    let out = Command::new("size").arg("-t").arg(&archive).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(total) = text.lines().find(|l| l.contains("(TOTALS)")) {
        let cols: Vec<&str> = total.split_whitespace().collect();
        if let [t, d, b, ..] = cols.as_slice() {
            println!(
                "
bundled SQLite (libsqlite3.a, linked whole): text {t}, data {d}, bss {b} bytes"
            );
        }
    }
    Ok(())
}

/// The crate a demangled symbol belongs to: the first path segment, with
/// `<impl ...>` and `<T as Trait>` forms reduced to the implementing type.
fn crate_of(symbol: &str) -> String {
    if symbol.starts_with("ring_core_") || symbol.contains("_ring_core_") {
        return "ring (C and assembly)".to_owned();
    }
    if symbol.starts_with("sqlite3") {
        return "SQLite (C, named sqlite3*)".to_owned();
    }
    let s = symbol.trim_start_matches(['<', '&', '*', ' ']);
    let s = s.strip_prefix("impl ").unwrap_or(s);
    let s = s.strip_prefix("dyn ").unwrap_or(s);
    let s = s.strip_prefix("mut ").unwrap_or(s);
    match s.find("::") {
        Some(i) if i > 0 && s[..i].chars().all(|c| c.is_alphanumeric() || c == '_') => {
            s[..i].to_owned()
        }
        _ => "(other: libc, C, unnamed)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_summary_lines() {
        assert_eq!(junit_counts("...\nOK (12 tests)\n"), (12, 0));
        assert_eq!(
            junit_counts("FAILURES!!!\nTests run: 9,  Failures: 2\n"),
            (7, 2)
        );
        assert_eq!(junit_counts("nothing"), (0, 0));
    }

    #[test]
    fn crates_of_symbols() {
        assert_eq!(
            crate_of("pooya_protocol::amount::parse_amount"),
            "pooya_protocol"
        );
        assert_eq!(
            crate_of("<uniffi_core::RustBuffer as core::fmt::Debug>::fmt"),
            "uniffi_core"
        );
        assert_eq!(
            crate_of("ring_core_0_17_14_aes_hw_encrypt"),
            "ring (C and assembly)"
        );
        assert_eq!(crate_of("memcpy"), "(other: libc, C, unnamed)");
    }

    #[test]
    fn finds_test_classes() {
        let dir = std::env::temp_dir().join(format!("xtask-kotlin-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let a = dir.join("ATest.kt");
        fs::write(
            &a,
            "package x.y\n\nclass ATest {\n    @Test fun t() {}\n}\nclass Helper\n",
        )
        .unwrap();
        let b = dir.join("B.kt");
        fs::write(&b, "package x.y\nclass B\n").unwrap();
        let found = junit_classes(&[a, b]).unwrap();
        assert_eq!(found, vec!["x.y.ATest".to_owned()]);
        fs::remove_dir_all(dir).unwrap();
    }
}
