package ir.pooya.android

import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import ir.pooya.core.DeviceKeystore
import ir.pooya.core.HostException
import java.security.GeneralSecurityException
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * The core's [DeviceKeystore] hook: a non-exportable AES-256-GCM key in AndroidKeyStore
 * (StrongBox when the device has one), usable without user authentication. It binds the
 * vault to this device: a copied vault file cannot be attacked elsewhere because the
 * password slot also needs a secret only this key can open.
 *
 * Blob format: `0x01 ‖ IV (12 bytes, chosen by the keystore) ‖ ciphertext ‖ tag (16 bytes)`,
 * with the associated data `pooya/device/v1`, so a blob made for another purpose fails.
 * Run `checkDeviceKeystore(AndroidKeystoreDeviceKeystore())` once on first start to find
 * devices whose keystore misbehaves before a vault is created with it.
 *
 * The key survives app updates but not uninstall or "clear data"; after that the vault's
 * password slot cannot be opened and the cards must be activated again (by design).
 *
 * The key is created with `setUnlockedDeviceRequired(true)` (API 28, the library's minSdk, so
 * no version check): while the device is locked every seal/open fails with a [HostException],
 * which the core reports as `Keystore` without counting a wrong password. Keys are created
 * once; a key made by an earlier version keeps the parameters it was made with until the
 * vault is reset (docs/security.md, "Platform keys").
 */
class AndroidKeystoreDeviceKeystore(
    private val alias: String = "ir.pooya.device.v1",
) : DeviceKeystore {
    override fun seal(plaintext: ByteArray): ByteArray = guarded {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, key())
        cipher.updateAAD(AAD)
        val iv = cipher.iv
        check(iv.size == IV_LEN) { "unexpected IV length ${iv.size}" }
        byteArrayOf(VERSION) + iv + cipher.doFinal(plaintext)
    }

    override fun open(sealed: ByteArray): ByteArray = guarded {
        if (sealed.size < 1 + IV_LEN + TAG_LEN || sealed[0] != VERSION) {
            throw HostException.Failed("not a device-keystore blob")
        }
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, existingKey(), GCMParameterSpec(TAG_LEN * 8, sealed, 1, IV_LEN))
        cipher.updateAAD(AAD)
        cipher.doFinal(sealed, 1 + IV_LEN, sealed.size - 1 - IV_LEN)
    }

    private inline fun <T> guarded(block: () -> T): T = try {
        block()
    } catch (e: HostException) {
        throw e
    } catch (e: GeneralSecurityException) {
        // AEADBadTagException (altered or foreign blob), KeyStoreException, ...: the class name
        // is what support needs; the messages carry no secret.
        throw HostException.Failed("${e.javaClass.simpleName}: ${e.message ?: ""}")
    } catch (e: IllegalStateException) {
        throw HostException.Failed("IllegalStateException: ${e.message ?: ""}")
    }

    private fun keyStore(): KeyStore = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }

    private fun existingKey(): SecretKey =
        keyStore().getKey(alias, null) as? SecretKey
            ?: throw HostException.Failed("device key $alias does not exist")

    @Synchronized
    private fun key(): SecretKey {
        (keyStore().getKey(alias, null) as? SecretKey)?.let { return it }
        return try {
            generate(strongBox = Build.VERSION.SDK_INT >= Build.VERSION_CODES.P)
        } catch (e: StrongBoxUnavailableException) {
            generate(strongBox = false)
        }
    }

    private fun generate(strongBox: Boolean): SecretKey {
        val spec = KeyGenParameterSpec.Builder(
            alias,
            KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT,
        )
            .setKeySize(256)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setRandomizedEncryptionRequired(true)
            .setUserAuthenticationRequired(false)
            // Usable only while the device is unlocked (API 28 = minSdk): a stolen, locked
            // phone's keystore refuses to open the device secret, so the password slot
            // cannot be attacked on it either.
            .setUnlockedDeviceRequired(true)
            .apply { if (strongBox) setIsStrongBoxBacked(true) }
            .build()
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, ANDROID_KEYSTORE)
            .apply { init(spec) }
            .generateKey()
    }

    private companion object {
        const val ANDROID_KEYSTORE = "AndroidKeyStore"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val VERSION: Byte = 1
        const val IV_LEN = 12
        const val TAG_LEN = 16
        val AAD = "pooya/device/v1".toByteArray()
    }
}
