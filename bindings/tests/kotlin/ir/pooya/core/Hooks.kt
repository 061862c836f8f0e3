package ir.pooya.core

import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import javax.crypto.AEADBadTagException
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * A clock the test moves by hand (the core reads time only through this hook): [advance] moves
 * the wall and the boot clock together (time passes), [set] only the wall clock (the user sets
 * the phone's time).
 */
class ManualClock(start: Long) : Clock {
    private val now = AtomicLong(start)
    private val sinceBootMs = AtomicLong(start * 1000)
    override fun nowUnix(): ULong = now.get().toULong()
    @Volatile private var bootId = "jvm-test-boot"
    override fun bootTime(): BootTime? = BootTime(bootId, sinceBootMs.get().toULong())
    fun advance(seconds: Long) { now.addAndGet(seconds); sinceBootMs.addAndGet(seconds * 1000) }
    /** The device restarts: a new boot, [sinceBootSecs] into it; the wall clock is left alone. */
    fun reboot(id: String, sinceBootSecs: Long) { bootId = id; sinceBootMs.set(sinceBootSecs * 1000) }
    fun set(seconds: Long) { now.set(seconds) }
    fun now(): Long = now.get()
}

/**
 * A software BiometricGate shaped like the Android one: an AES-256-GCM key standing in for
 * the user-authentication-bound Keystore key, a "prompt" per open. The test scripts what the
 * next prompt answers; [invalidate] deletes the key, as a new fingerprint enrollment does.
 */
class ScriptedBiometricGate : BiometricGate {
    @Volatile private var key: SecretKey? = null
    @Volatile var nextAnswer: BiometricException? = null
    val enrolls = AtomicInteger()
    val prompts = AtomicInteger()
    val removes = AtomicInteger()

    override fun enroll(plaintext: ByteArray): ByteArray {
        enrolls.incrementAndGet()
        val k = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
        key = k
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, k)
        return cipher.iv + cipher.doFinal(plaintext)
    }

    override fun open(sealed: ByteArray): ByteArray {
        prompts.incrementAndGet()
        nextAnswer?.let { nextAnswer = null; throw it }
        // KeyPermanentlyInvalidatedException on Android: the key is gone.
        val k = key ?: throw BiometricException.Invalidated()
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, k, GCMParameterSpec(128, sealed, 0, 12))
        return try {
            cipher.doFinal(sealed, 12, sealed.size - 12)
        } catch (e: AEADBadTagException) {
            throw BiometricException.Failed("AEADBadTagException")
        }
    }

    override fun remove() {
        removes.incrementAndGet()
        key = null
    }

    /** A new biometric enrollment on the device: the platform key is permanently invalidated. */
    fun invalidate() { key = null }

    val hasKey: Boolean get() = key != null
}

/** The wall clock moved by [offsetSecs]: a phone whose clock is wrong. */
class OffsetClock(@Volatile var offsetSecs: Long) : Clock {
    override fun nowUnix(): ULong = (System.currentTimeMillis() / 1000L + offsetSecs).toULong()
    /** The real boot clock: only the wall clock is wrong. */
    override fun bootTime(): BootTime? = ir.pooya.android.SystemClock.bootTime()
}

/** AES-256-GCM with a software key and a random IV: the Android Keystore shell's shape. */
class SoftwareKeystore : DeviceKeystore {
    private val key: SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()

    override fun seal(plaintext: ByteArray): ByteArray {
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, key)
        return cipher.iv + cipher.doFinal(plaintext)
    }

    override fun open(sealed: ByteArray): ByteArray {
        if (sealed.size < 12 + 16) throw HostException.Failed("blob too short")
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(128, sealed, 0, 12))
        return try {
            cipher.doFinal(sealed, 12, sealed.size - 12)
        } catch (e: AEADBadTagException) {
            throw HostException.Failed("AEADBadTagException")
        }
    }
}

/** Wraps a Transport and records the URLs it was asked to POST to. */
class RecordingTransport(private val inner: Transport) : Transport {
    val urls: MutableList<String> = java.util.Collections.synchronizedList(mutableListOf())
    override suspend fun postJson(url: String, body: ByteArray, timeoutMs: ULong): HttpResponse {
        urls.add(url)
        return inner.postJson(url, body, timeoutMs)
    }
}

/** A Transport that never reaches anything: the app is offline. */
class OfflineTransport : Transport {
    val calls = AtomicInteger()
    override suspend fun postJson(url: String, body: ByteArray, timeoutMs: ULong): HttpResponse {
        calls.incrementAndGet()
        throw HostException.Failed("UnknownHostException: no network")
    }
}

/** The fastest KDF the core accepts (tests run many password attempts), idle lock after 60 s. */
fun fastSettings(): VaultSettings = defaultVaultSettings().copy(
    kdfMemoryKib = 19u * 1024u,
    kdfIterations = 2u,
    idleTimeoutSecs = 60uL,
)

/** A fresh temporary directory, deleted by [deleteTree]. */
fun tempDir(prefix: String): Path = Files.createTempDirectory(prefix)

fun deleteTree(dir: Path) {
    dir.toFile().deleteRecursively()
}
