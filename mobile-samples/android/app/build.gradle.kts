// The sample app. Before building: bindings/scripts/build-android.sh, from
// the repository root (the SDK library's .so for each ABI and its generated
// Kotlin, in bindings/android/devicetrust/generated).
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
    id("org.jetbrains.kotlin.plugin.compose")
}

android {
    namespace = "com.devicetrust.sample"
    compileSdk = 35

    defaultConfig {
        applicationId = "com.devicetrust.sample"
        minSdk = 28 // framework BiometricPrompt with CryptoObject
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        // The emulator reaches the host's 127.0.0.1 as 10.0.2.2.
        buildConfigField("String", "SERVER_URL", "\"http://10.0.2.2:8080\"")
        buildConfigField("String", "RP_ID", "\"http://127.0.0.1:8080\"")
    }

    buildFeatures {
        compose = true
        buildConfig = true
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    // The SDK: bindings, .so, the Android Keystore key store and session sealer.
    implementation(project(":devicetrust"))
    implementation(platform("androidx.compose:compose-bom:2025.01.00"))
    implementation("androidx.compose.material3:material3")
    implementation("androidx.compose.ui:ui")
    implementation("androidx.activity:activity-compose:1.9.3")
    implementation("androidx.lifecycle:lifecycle-runtime-compose:2.8.7")
}
