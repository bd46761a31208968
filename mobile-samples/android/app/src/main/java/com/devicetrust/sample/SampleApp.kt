package com.devicetrust.sample

import android.app.Application
import com.devicetrust.sample.flow.BiometricSignIn
import com.devicetrust.sample.flow.SignInFlow
import com.devicetrust.sdk.Config
import com.devicetrust.sdk.DeviceTrust
import com.devicetrust.sdk.DeviceTrustException
import com.devicetrust.sdk.android.AndroidKeystoreKeyStore
import com.devicetrust.sdk.android.AndroidSessionSealer
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.launch

/** Opening the SDK: it opens its local database, so it runs off the main thread. */
sealed interface Startup {
    data object Opening : Startup
    data class Ready(val flow: SignInFlow) : Startup
    data class Failed(val message: String) : Startup
}

/**
 * Creates the SDK once per process, with the Android Keystore behind it and
 * sessions sealed by a Keystore key, so the user stays signed in across
 * restarts.
 */
class SampleApp : Application() {
    private val _startup = MutableStateFlow<Startup>(Startup.Opening)
    val startup: StateFlow<Startup> = _startup.asStateFlow()

    override fun onCreate() {
        super.onCreate()
        CoroutineScope(SupervisorJob() + Dispatchers.IO).launch {
            _startup.value = try {
                // The state folder is kept out of backups and device transfers
                // (res/xml/data_extraction_rules.xml, backup_rules.xml): a
                // restored phone has none of the Keystore keys it names.
                val config = Config(
                    serverUrl = BuildConfig.SERVER_URL,
                    rpId = BuildConfig.RP_ID,
                    stateDir = filesDir.resolve("devicetrust").path,
                    allowInsecureHttp = BuildConfig.DEBUG,
                )
                val keyStore = AndroidKeystoreKeyStore(this@SampleApp)
                val sdk = DeviceTrust(config, keyStore)
                // Before any call: sessions are sealed in the local state and
                // restored at the first call after a restart.
                sdk.setSessionSealer(AndroidSessionSealer(this@SampleApp))
                Startup.Ready(SignInFlow(sdk, BiometricSignIn(sdk, keyStore)).also { it.start() })
            } catch (e: DeviceTrustException) {
                Startup.Failed(e.message ?: e.javaClass.simpleName)
            }
        }
    }
}
