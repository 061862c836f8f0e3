package ir.pooya.core

import java.security.SecureRandom
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import javax.crypto.spec.IvParameterSpec
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * Kotlin implementations of the DeviceKeystore foreign trait, called back from Rust by
 * `checkDeviceKeystore`: the same shape as the Android Keystore shell, with a software key.
 */
class DeviceKeystoreTest {
    /** AES-256-GCM, random 12-byte IV prepended: what AndroidKeystoreDeviceKeystore does. */
    open class GcmKeystore : DeviceKeystore {
        private val key: SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
        val seals = AtomicInteger()
        val opens = AtomicInteger()

        override fun seal(plaintext: ByteArray): ByteArray {
            seals.incrementAndGet()
            val cipher = Cipher.getInstance("AES/GCM/NoPadding")
            cipher.init(Cipher.ENCRYPT_MODE, key)
            return cipher.iv + cipher.doFinal(plaintext)
        }

        override fun open(sealed: ByteArray): ByteArray {
            opens.incrementAndGet()
            if (sealed.size < 12 + 16) throw HostException.Failed("blob too short")
            val cipher = Cipher.getInstance("AES/GCM/NoPadding")
            cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(128, sealed, 0, 12))
            return try {
                cipher.doFinal(sealed, 12, sealed.size - 12)
            } catch (e: javax.crypto.AEADBadTagException) {
                throw HostException.Failed("AEADBadTagException")
            }
        }
    }

    /** AES-CTR without a tag: confidential but not authenticated, which the vault must not accept. */
    class CtrKeystore : DeviceKeystore {
        private val key: SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()

        override fun seal(plaintext: ByteArray): ByteArray {
            val iv = ByteArray(16).also { SecureRandom().nextBytes(it) }
            val cipher = Cipher.getInstance("AES/CTR/NoPadding")
            cipher.init(Cipher.ENCRYPT_MODE, key, IvParameterSpec(iv))
            return iv + cipher.doFinal(plaintext)
        }

        override fun open(sealed: ByteArray): ByteArray {
            val cipher = Cipher.getInstance("AES/CTR/NoPadding")
            cipher.init(Cipher.DECRYPT_MODE, key, IvParameterSpec(sealed, 0, 16))
            return cipher.doFinal(sealed, 16, sealed.size - 16)
        }
    }

    @Test
    fun aGcmKeystorePassesAndIsCalledBackFromRust() {
        val ks = GcmKeystore()
        checkDeviceKeystore(ks)
        assertEquals(1, ks.seals.get())
        assertEquals(2, ks.opens.get()) // the genuine blob, then the tampered one
    }

    @Test
    fun aKeystoreThatDoesNotSealIsRefused() {
        val identity = object : DeviceKeystore {
            override fun seal(plaintext: ByteArray) = plaintext.copyOf()
            override fun open(sealed: ByteArray) = sealed.copyOf()
        }
        val e = expectThrows<PooyaException.KeystoreUnusable> { checkDeviceKeystore(identity) }
        assertEquals("keystore_unusable", e.code())
        assertTrue(e.reason, e.reason.contains("plaintext"))
    }

    @Test
    fun anUnauthenticatedKeystoreIsRefused() {
        val e = expectThrows<PooyaException.KeystoreUnusable> { checkDeviceKeystore(CtrKeystore()) }
        assertTrue(e.reason, e.reason.contains("not authenticated"))
    }

    @Test
    fun aKeystoreThatForgetsIsRefused() {
        val forgetful = object : GcmKeystore() {
            override fun open(sealed: ByteArray): ByteArray = ByteArray(32)
        }
        val e = expectThrows<PooyaException.KeystoreUnusable> { checkDeviceKeystore(forgetful) }
        assertTrue(e.reason, e.reason.contains("did not give back"))
    }

    @Test
    fun aHostExceptionBecomesHostFailureWithItsDetails() {
        val broken = object : DeviceKeystore {
            override fun seal(plaintext: ByteArray): ByteArray =
                throw HostException.Failed("KeyStoreException: key unavailable")
            override fun open(sealed: ByteArray): ByteArray = throw AssertionError("not reached")
        }
        val e = expectThrows<PooyaException.HostFailure> { checkDeviceKeystore(broken) }
        assertEquals("host_failure", e.code())
        assertEquals("KeyStoreException: key unavailable", e.details)
    }

    @Test
    fun anUndeclaredExceptionIsReportedNotACrash() {
        val buggy = object : DeviceKeystore {
            override fun seal(plaintext: ByteArray): ByteArray = throw IllegalStateException("bug in the shell")
            override fun open(sealed: ByteArray): ByteArray = throw AssertionError("not reached")
        }
        val e = expectThrows<PooyaException.HostFailure> { checkDeviceKeystore(buggy) }
        assertTrue(e.details, e.details.contains("unexpected host exception"))
        assertTrue(e.details, e.details.contains("bug in the shell"))
    }

    @Test
    fun callbacksWorkFromManyThreadsAtOnce() {
        val ks = GcmKeystore()
        val pool = Executors.newFixedThreadPool(8)
        val failures = AtomicInteger()
        repeat(8) {
            pool.execute {
                repeat(25) {
                    try {
                        checkDeviceKeystore(ks)
                    } catch (e: Throwable) {
                        failures.incrementAndGet()
                    }
                }
            }
        }
        pool.shutdown()
        assertTrue(pool.awaitTermination(60, TimeUnit.SECONDS))
        assertEquals(0, failures.get())
        assertEquals(200, ks.seals.get())
        assertEquals(400, ks.opens.get())
    }
}
