package ir.pooya.android

import android.os.Build
import android.os.Handler
import android.os.Looper
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import androidx.biometric.BiometricManager
import androidx.biometric.BiometricManager.Authenticators.BIOMETRIC_STRONG
import androidx.biometric.BiometricPrompt
import androidx.core.content.ContextCompat
import androidx.fragment.app.FragmentActivity
import ir.pooya.core.BiometricException
import ir.pooya.core.BiometricGate
import java.security.GeneralSecurityException
import java.security.KeyStore
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicReference
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * The core's [BiometricGate] hook: an AES-256-GCM key in AndroidKeyStore that only a strong
 * biometric (class 3) unlocks, for every single use, and that the platform destroys when the
 * biometric enrollment changes:
 * `setUserAuthenticationRequired(true)`, `setInvalidatedByBiometricEnrollment(true)`,
 * `setUserAuthenticationParameters(0, AUTH_BIOMETRIC_STRONG)` on API 30+, and
 * `setUnlockedDeviceRequired(true)` (API 28, the minSdk). [remove] deletes the key
 * (`KeyStore.deleteEntry`); the core calls it on wipe, reset and password change. No device-credential
 * (PIN/pattern) fallback: the app password is the fallback, enforced by the core.
 *
 * Every seal and open goes through [BiometricPrompt] with a [BiometricPrompt.CryptoObject]
 * holding the cipher, so the key is used only by the authenticated operation.
 *
 * Threading: the core calls these methods **blocking**, on the thread the app called the
 * core on. That thread must not be the main thread (the prompt needs it): call the core from
 * a background dispatcher (`withContext(Dispatchers.IO) { … }`). A call on the main thread
 * fails at once with [BiometricException.Failed] instead of deadlocking.
 *
 * Outcomes: [KeyPermanentlyInvalidatedException] or a missing key → [BiometricException.Invalidated]
 * (the core then drops the biometric slot and asks for the password); user cancel / negative
 * button → [BiometricException.Cancelled]; lockout → [BiometricException.Lockout]; no hardware
 * or nothing enrolled → [BiometricException.Unavailable].
 *
 * @param activity the foreground activity to show the prompt on, or null when none is.
 * @param promptInfo title and texts of the prompt; its authenticators must be BIOMETRIC_STRONG
 *   and it must have a negative button (no device credential).
 */
class BiometricPromptGate(
    private val activity: () -> FragmentActivity?,
    private val promptInfo: BiometricPrompt.PromptInfo,
    private val alias: String = "ir.pooya.biometric.v1",
    private val promptTimeoutSeconds: Long = 300,
) : BiometricGate {
    override fun enroll(plaintext: ByteArray): ByteArray {
        ensureBackgroundThread()
        ensureAvailable()
        val cipher = try {
            deleteKey()
            Cipher.getInstance(TRANSFORMATION).apply { init(Cipher.ENCRYPT_MODE, generateKey()) }
        } catch (e: GeneralSecurityException) {
            throw BiometricException.Failed("${e.javaClass.simpleName}: ${e.message ?: ""}")
        }
        val authed = authenticate(cipher)
        return try {
            authed.updateAAD(AAD)
            byteArrayOf(VERSION) + authed.iv + authed.doFinal(plaintext)
        } catch (e: GeneralSecurityException) {
            throw BiometricException.Failed("${e.javaClass.simpleName}: ${e.message ?: ""}")
        }
    }

    override fun open(sealed: ByteArray): ByteArray {
        ensureBackgroundThread()
        if (sealed.size < 1 + IV_LEN + TAG_LEN || sealed[0] != VERSION) {
            throw BiometricException.Failed("not a biometric blob")
        }
        ensureAvailable()
        val cipher = try {
            val key = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }
                .getKey(alias, null) as? SecretKey
                ?: throw BiometricException.Invalidated() // the key is gone: same remedy
            Cipher.getInstance(TRANSFORMATION).apply {
                init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(TAG_LEN * 8, sealed, 1, IV_LEN))
            }
        } catch (e: KeyPermanentlyInvalidatedException) {
            throw BiometricException.Invalidated()
        } catch (e: GeneralSecurityException) {
            throw BiometricException.Failed("${e.javaClass.simpleName}: ${e.message ?: ""}")
        }
        val authed = authenticate(cipher)
        return try {
            authed.updateAAD(AAD)
            authed.doFinal(sealed, 1 + IV_LEN, sealed.size - 1 - IV_LEN)
        } catch (e: GeneralSecurityException) {
            throw BiometricException.Failed("${e.javaClass.simpleName}: ${e.message ?: ""}")
        }
    }

    override fun remove() {
        try {
            deleteKey()
        } catch (e: GeneralSecurityException) {
            throw BiometricException.Failed("${e.javaClass.simpleName}: ${e.message ?: ""}")
        }
    }

    private fun deleteKey() {
        val ks = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }
        if (ks.containsAlias(alias)) ks.deleteEntry(alias)
    }

    private fun generateKey(): SecretKey {
        val spec = KeyGenParameterSpec.Builder(
            alias,
            KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT,
        )
            .setKeySize(256)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setUserAuthenticationRequired(true)
            .setInvalidatedByBiometricEnrollment(true)
            // Only while the device is unlocked (API 28 = minSdk).
            .setUnlockedDeviceRequired(true)
            .apply {
                if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
                    // 0 s: every use needs its own authentication; biometrics only.
                    setUserAuthenticationParameters(0, KeyProperties.AUTH_BIOMETRIC_STRONG)
                }
            }
            .build()
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, ANDROID_KEYSTORE)
            .apply { init(spec) }
            .generateKey()
    }

    private fun ensureBackgroundThread() {
        if (Looper.myLooper() == Looper.getMainLooper()) {
            throw BiometricException.Failed("called on the main thread: call Pooya from a background thread")
        }
    }

    private fun ensureAvailable() {
        val host = activity() ?: throw BiometricException.Failed("no foreground activity to prompt on")
        // No hardware, none enrolled, security update required, unsupported: all mean the
        // app should offer the password only.
        if (BiometricManager.from(host).canAuthenticate(BIOMETRIC_STRONG) != BiometricManager.BIOMETRIC_SUCCESS) {
            throw BiometricException.Unavailable()
        }
    }

    /** Shows the prompt on the main thread and blocks this (background) thread for the result. */
    private fun authenticate(cipher: Cipher): Cipher {
        val host = activity() ?: throw BiometricException.Failed("no foreground activity to prompt on")
        val outcome = CompletableFuture<Cipher>()
        val prompt = AtomicReference<BiometricPrompt?>(null)
        Handler(Looper.getMainLooper()).post {
            val callback = object : BiometricPrompt.AuthenticationCallback() {
                override fun onAuthenticationSucceeded(result: BiometricPrompt.AuthenticationResult) {
                    val c = result.cryptoObject?.cipher
                    if (c != null) {
                        outcome.complete(c)
                    } else {
                        outcome.completeExceptionally(BiometricException.Failed("no cipher after authentication"))
                    }
                }

                override fun onAuthenticationError(errorCode: Int, errString: CharSequence) {
                    outcome.completeExceptionally(mapError(errorCode))
                }
                // onAuthenticationFailed: one unrecognised finger; the prompt stays up.
            }
            try {
                val p = BiometricPrompt(host, ContextCompat.getMainExecutor(host), callback)
                prompt.set(p)
                p.authenticate(promptInfo, BiometricPrompt.CryptoObject(cipher))
            } catch (e: RuntimeException) {
                outcome.completeExceptionally(BiometricException.Failed("${e.javaClass.simpleName}: ${e.message ?: ""}"))
            }
        }
        return try {
            outcome.get(promptTimeoutSeconds, TimeUnit.SECONDS)
        } catch (e: TimeoutException) {
            Handler(Looper.getMainLooper()).post { prompt.get()?.cancelAuthentication() }
            throw BiometricException.Cancelled()
        } catch (e: ExecutionException) {
            throw e.cause as? BiometricException ?: BiometricException.Failed(e.cause.toString())
        } catch (e: InterruptedException) {
            Thread.currentThread().interrupt()
            throw BiometricException.Cancelled()
        }
    }

    private fun mapError(code: Int): BiometricException = when (code) {
        BiometricPrompt.ERROR_USER_CANCELED,
        BiometricPrompt.ERROR_NEGATIVE_BUTTON,
        BiometricPrompt.ERROR_CANCELED,
        BiometricPrompt.ERROR_TIMEOUT,
        -> BiometricException.Cancelled()
        BiometricPrompt.ERROR_LOCKOUT,
        BiometricPrompt.ERROR_LOCKOUT_PERMANENT,
        -> BiometricException.Lockout()
        BiometricPrompt.ERROR_NO_BIOMETRICS,
        BiometricPrompt.ERROR_HW_NOT_PRESENT,
        BiometricPrompt.ERROR_HW_UNAVAILABLE,
        BiometricPrompt.ERROR_NO_DEVICE_CREDENTIAL,
        -> BiometricException.Unavailable()
        else -> BiometricException.Failed("BiometricPrompt error $code")
    }

    private companion object {
        const val ANDROID_KEYSTORE = "AndroidKeyStore"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val VERSION: Byte = 1
        const val IV_LEN = 12
        const val TAG_LEN = 16
        val AAD = "pooya/biometric/v1".toByteArray()
    }
}
