// The devicetrust SDK for Android as a library module (AAR): the generated
// Kotlin bindings and libdevicetrust_ffi.so for each ABI (both under
// generated/, written by bindings/scripts/build-android.sh, not committed),
// and the platform code in src/main/kotlin: AndroidKeystoreKeyStore (the
// PlatformKeyStore), AndroidSessionSealer (the SessionSealer) and
// BiometricAvailability. Framework APIs only (no AndroidX).
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "com.devicetrust.sdk.android"
    compileSdk = 35

    defaultConfig {
        minSdk = 28 // framework BiometricPrompt with CryptoObject
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets["main"].apply {
        java.srcDir("generated/kotlin")
        jniLibs.srcDir("generated/jniLibs")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    // The generated bindings call the .so through JNA and expose suspend functions.
    api("net.java.dev.jna:jna:5.17.0@aar")
    api("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
    testImplementation("org.junit.jupiter:junit-jupiter:5.14.1")
}

tasks.withType<Test> { useJUnitPlatform() }
