//! `devicetrust demo`: the whole journey against a real server started
//! in-process on a temporary database, narrated step by step.

use std::path::Path;
use std::sync::Arc;

use devicetrust_core::{
    Config, DeviceTrust, OtpChannel, PlatformKeyError, PromptText, SignInStep, SoftwareKeyStore,
    UserPresence, UserVerification,
};
use devicetrust_server::api::admin::new_user;
use devicetrust_server::api::types::CreateUserRequest;
use devicetrust_server::app::{self, AppState, Components, Settings};
use devicetrust_server::clock::{Clock, SystemClock};
use devicetrust_server::notify::Outbox;
use devicetrust_server::risk::AllowAll;
use devicetrust_server::secrets::{Hasher, HasherConfig, Secret};
use devicetrust_server::storage::sqlite::SqliteStore;
use devicetrust_server::storage::Store;

const USER: &str = "jane.doe";
const PASSWORD: &str = "demo password 2026";
const SECURITY_CODE: &str = "135790";

type DemoResult<T> = Result<T, String>;

/// The demo's stand-in for a fingerprint: says what it confirms.
struct Narrated;

impl UserPresence for Narrated {
    fn confirm(&self, prompt: &PromptText) -> Result<(), PlatformKeyError> {
        println!("      [biometric] \"{}\" — confirmed", prompt.title);
        Ok(())
    }
}

fn step(n: u32, text: &str) {
    println!("\n{n}. {text}");
}

fn last_code(outbox: &Path) -> DemoResult<String> {
    let text = std::fs::read_to_string(outbox).map_err(|e| format!("reading the outbox: {e}"))?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| m["purpose"] == "otp")
        .and_then(|m| m["code"].as_str().map(str::to_owned))
        .ok_or_else(|| "no code in the outbox".into())
}

pub async fn run() -> DemoResult<()> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let outbox = dir.path().join("outbox.jsonl");
    let rp_id = "https://demo.devicetrust.local";

    step(1, "Starting a devicetrust server on a temporary database…");
    let db = dir.path().join("server.db");
    let store = Arc::new(
        SqliteStore::open(db.to_str().ok_or("temporary path is not UTF-8")?)
            .await
            .map_err(|e| e.to_string())?,
    );
    let hasher = Hasher::new(HasherConfig::default()).map_err(|e| e.to_string())?;
    let user = new_user(
        &hasher,
        &devicetrust_server::password_policy::PasswordPolicy::default(),
        SystemClock.now(),
        CreateUserRequest {
            user_id: USER.into(),
            name: "Jane Doe".into(),
            email: "jane@example.com".into(),
            mobile: Some("+447700900123".into()),
            primary_market: "GB".into(),
            password: Secret::new(PASSWORD),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    store.create_user(user).await.map_err(|e| e.to_string())?;
    let state = AppState::new(Components {
        settings: Settings {
            rp_id: rp_id.into(),
            ..Settings::default()
        },
        store,
        clock: Arc::new(SystemClock),
        notifier: Arc::new(Outbox::new(&outbox)),
        risk: Arc::new(AllowAll),
        hasher,
        server_key: devicetrust_server::server_key::ServerKey::generate().expect("server key"),
    })
    .await
    .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app::serve(state, listener, async move {
        let _ = stopped.await;
    }));
    println!("   listening on {base}; card holder {USER} (market GB) provisioned");

    let keys = SoftwareKeyStore::new(dir.path().join("keys"), &[7u8; 32])
        .map_err(|e| e.to_string())?
        .with_user_presence(Arc::new(Narrated));
    let mut config = Config::new(&base, rp_id, &dir.path().join("state").to_string_lossy());
    config.allow_insecure_http = true;
    let sdk = DeviceTrust::new(config, Arc::new(keys)).map_err(|e| e.to_string())?;
    let result = journey(&sdk, &outbox).await;
    let _ = stop.send(());
    let _ = server.await;
    result
}

async fn journey(sdk: &DeviceTrust, outbox: &Path) -> DemoResult<()> {
    let e = |e: devicetrust_core::DeviceTrustError| e.to_string();

    step(2, &format!("Signing in as {USER} with a password…"));
    let SignInStep::EnrolmentRequired { name, email, .. } =
        sdk.sign_in_with_password(USER, PASSWORD).await.map_err(e)?
    else {
        return Err("expected the one-time enrolment".into());
    };
    println!("   first sign-in: please confirm {name} <{email}>");

    step(3, &format!("Enrolling with security code {SECURITY_CODE}…"));
    let SignInStep::SecondFactorRequired { otp_options, .. } = sdk
        .complete_enrolment(SECURITY_CODE, None)
        .await
        .map_err(e)?
    else {
        return Err("expected a second factor".into());
    };
    for o in &otp_options {
        println!("   a code can go to {:?}: {}", o.channel, o.destination);
    }

    step(4, "Sending a one-time code by e-mail…");
    let sent = sdk.send_otp(OtpChannel::Email).await.map_err(e)?;
    let code = last_code(outbox)?;
    println!(
        "   sent to {}; the outbox shows code {code}",
        sent.destination
    );
    let SignInStep::SignedIn { session } = sdk.verify_otp(&code).await.map_err(e)? else {
        return Err("expected to be signed in".into());
    };
    println!(
        "   signed in (amr {:?})",
        crate::interactive::amr_names(&session)
    );

    step(5, "Enabling biometric sign-in on this computer…");
    let device = sdk
        .enable_biometric_sign_in(
            "Demo terminal",
            UserVerification::Biometric,
            PromptText::new("Turn on biometric sign-in"),
        )
        .await
        .map_err(e)?;
    println!(
        "   trusted device {} ({:?}), trusted until {}",
        device.device_id,
        device.key_storage,
        crate::account::utc(device.trusted_until)
    );

    step(
        6,
        "Signing out, then back in with the biometric — no password, no code…",
    );
    sdk.sign_out().await.map_err(e)?;
    let SignInStep::SignedIn { session } = sdk
        .sign_in_with_biometric(USER, PromptText::new("Sign in to devicetrust"))
        .await
        .map_err(e)?
    else {
        return Err("expected to be signed in".into());
    };
    println!(
        "   signed in (amr {:?})",
        crate::interactive::amr_names(&session)
    );

    step(7, "Listing trusted devices…");
    for d in sdk.trusted_devices().await.map_err(e)? {
        let this = if d.is_this_device {
            " (this device)"
        } else {
            ""
        };
        println!("   {} — {}{this}", d.device_id, d.name);
    }

    step(
        8,
        "Removing this device: its key is deleted and the session ends…",
    );
    sdk.remove_device(&device.device_id).await.map_err(e)?;
    println!(
        "   biometric sign-in available now: {}",
        sdk.is_biometric_sign_in_available(USER).await.map_err(e)?
    );
    println!("\nDemo complete.");
    Ok(())
}
