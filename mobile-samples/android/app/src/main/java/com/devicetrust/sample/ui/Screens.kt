package com.devicetrust.sample.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.text.input.PasswordVisualTransformation
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import com.devicetrust.sdk.KnownAccount
import com.devicetrust.sdk.OtpChannel
import com.devicetrust.sample.flow.NextStep
import com.devicetrust.sample.flow.Screen
import com.devicetrust.sample.flow.SignInFlow
import com.devicetrust.sample.flow.accountLabel
import kotlinx.coroutines.launch

/** Renders whatever screen the flow is on, its message and its progress. */
@Composable
fun App(flow: SignInFlow) {
    val screen by flow.screen.collectAsStateWithLifecycle()
    val message by flow.message.collectAsStateWithLifecycle()
    val busy by flow.busy.collectAsStateWithLifecycle()
    val scope = rememberCoroutineScope()
    val act: (suspend () -> Unit) -> Unit = { block -> scope.launch { block() } }

    Column(Modifier.fillMaxSize().padding(24.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        when (val s = screen) {
            is Screen.SignIn -> SignIn(
                s, busy,
                onPassword = { u, p -> act { flow.signInWithPassword(u, p) } },
                onBiometric = { act { flow.signInWithBiometric() } },
                onPick = { account -> act { flow.pickAccount(account) } },
                onCreateAccount = { act { flow.openCreateAccount() } },
                onForgotUserId = flow::openForgotUserId,
                onForgotPassword = flow::openForgotPassword,
            )
            is Screen.Enrolment -> Enrolment(s, busy) { code, mobile -> act { flow.enrol(code, mobile) } }
            is Screen.SecondFactor -> SecondFactor(
                s, busy,
                onSend = { channel -> act { flow.sendCode(channel) } },
                onVerify = { code -> act { flow.verify(code) } },
                onApprove = { act { flow.approveWithThisDevice() } },
                onCancel = { act { flow.cancelConfirm() } },
            )
            is Screen.OfferBiometric -> OfferBiometric(s, busy, onEnable = { name -> act { flow.enableBiometric(name) } }, onSkip = { act { flow.skipBiometric() } })
            is Screen.Home -> Home(
                s, busy,
                onRemove = { id -> act { flow.removeDevice(id) } },
                onSettings = { act { flow.openSettings() } },
                onAccounts = { act { flow.openAccounts() } },
                onSignOut = { act { flow.signOut() } },
            )
            is Screen.CreateAccount, is Screen.ForgotUserId, is Screen.RecoveryStart, is Screen.RecoveryCode, is Screen.RecoveryNewPassword ->
                SignedOutScreens(s, flow, busy, act)
            is Screen.Settings, is Screen.ChangePassword, is Screen.ChangeContact, is Screen.ConfirmContact, Screen.ChangeSecurityCode,
            is Screen.SecurityEvents, is Screen.Cards, is Screen.ConfirmItIsYou ->
                AccountScreens(s, flow, busy, act)
        }
        if (busy) CircularProgressIndicator()
    }

    message?.let { m ->
        AlertDialog(
            onDismissRequest = flow::dismissMessage,
            title = { Text(m.title) },
            text = { Text(m.body) },
            confirmButton = {
                TextButton(onClick = flow::dismissMessage) {
                    Text(
                        when (m.next) {
                            NextStep.WAIT_OR_CALL -> "OK"
                            NextStep.SIGN_IN_WITH_PASSWORD, NextStep.USE_PASSWORD_INSTEAD -> "Use password"
                            NextStep.SEND_NEW_CODE -> "Send a new code"
                            NextStep.TRY_AGAIN -> "Try again"
                            NextStep.CONFIRM_IT_IS_YOU -> "Continue"
                            NextStep.START_RECOVERY_AGAIN -> "Start again"
                            NextStep.NOTHING -> "OK"
                        },
                    )
                }
            },
        )
    }
}

@Composable
private fun SignIn(
    s: Screen.SignIn,
    busy: Boolean,
    onPassword: (String, String) -> Unit,
    onBiometric: () -> Unit,
    onPick: (KnownAccount) -> Unit,
    onCreateAccount: () -> Unit,
    onForgotUserId: () -> Unit,
    onForgotPassword: () -> Unit,
) {
    var user by remember(s.userId) { mutableStateOf(s.userId) }
    var password by remember { mutableStateOf("") }
    Text("Log in", style = androidx.compose.material3.MaterialTheme.typography.headlineMedium)
    // Several accounts on this phone: pick one (a signed-in one opens at once), or log in with another below.
    if (s.accounts.size > 1 || s.accounts.any { it.signedIn }) {
        s.accounts.forEach { a ->
            OutlinedButton(onClick = { onPick(a) }, enabled = !busy && a.userId != s.userId, modifier = Modifier.fillMaxWidth()) { Text(accountLabel(a)) }
        }
        Text("Or log in with another user ID:")
    }
    if (s.biometricAvailable) {
        // Offer the biometric at once, as banking apps do at launch.
        LaunchedEffect(s) { onBiometric() }
        Button(onClick = onBiometric, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("Sign in with fingerprint or face") }
    }
    OutlinedTextField(user, { user = it }, label = { Text("User ID") }, singleLine = true, modifier = Modifier.fillMaxWidth())
    OutlinedTextField(
        password, { password = it }, label = { Text("Password") }, singleLine = true,
        visualTransformation = PasswordVisualTransformation(),
        keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Password),
        modifier = Modifier.fillMaxWidth(),
    )
    Button(onClick = { onPassword(user, password) }, enabled = !busy && user.isNotBlank() && password.isNotEmpty(), modifier = Modifier.fillMaxWidth()) { Text("Log in") }
    Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
        TextButton(onClick = onForgotUserId, enabled = !busy) { Text("Forgot user ID?") }
        TextButton(onClick = onForgotPassword, enabled = !busy) { Text("Forgot password?") }
    }
    OutlinedButton(onClick = onCreateAccount, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("New here? Create online access with your card") }
}

@Composable
private fun Enrolment(s: Screen.Enrolment, busy: Boolean, onEnrol: (String, String?) -> Unit) {
    var code by remember { mutableStateOf("") }
    var mobile by remember { mutableStateOf("") }
    Text("Set up two-step verification", style = androidx.compose.material3.MaterialTheme.typography.headlineSmall)
    Text("Please check your details. If they are wrong, contact your programme administrator.")
    Card(Modifier.fillMaxWidth()) {
        Column(Modifier.padding(16.dp)) {
            Text("Name: ${s.name}")
            Text("E-mail: ${s.email}")
        }
    }
    OutlinedTextField(
        code, { code = it.filter(Char::isDigit).take(9) }, label = { Text("Security code (6-9 digits)") }, singleLine = true,
        visualTransformation = PasswordVisualTransformation(),
        keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.NumberPassword), modifier = Modifier.fillMaxWidth(),
    )
    OutlinedTextField(
        mobile, { mobile = it }, label = { Text("Mobile number (optional, e.g. +447700900123)") }, singleLine = true,
        keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Phone), modifier = Modifier.fillMaxWidth(),
    )
    Text("Without a mobile number, codes always go to your e-mail.")
    Button(onClick = { onEnrol(code, mobile) }, enabled = !busy && code.length >= 6, modifier = Modifier.fillMaxWidth()) { Text("Continue") }
}

@Composable
private fun SecondFactor(s: Screen.SecondFactor, busy: Boolean, onSend: (OtpChannel) -> Unit, onVerify: (String) -> Unit, onApprove: () -> Unit, onCancel: () -> Unit) {
    var code by remember { mutableStateOf("") }
    Text("Verify it's you", style = androidx.compose.material3.MaterialTheme.typography.headlineSmall)
    if (s.confirming) Text("One more step before we make the change you asked for.")
    if (s.canApprove) {
        Button(onClick = onApprove, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("Approve with fingerprint or face") }
    }
    s.options.forEach { o ->
        OutlinedButton(onClick = { onSend(o.channel) }, enabled = !busy, modifier = Modifier.fillMaxWidth()) {
            Text("Send a code by ${if (o.channel == OtpChannel.SMS) "SMS" else "e-mail"} to ${o.destination}")
        }
    }
    s.sentTo?.let { destination ->
        Text("We sent a code to $destination.")
        OutlinedTextField(
            code, { code = it.filter(Char::isDigit).take(6) }, label = { Text("6-digit code") }, singleLine = true,
            keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.NumberPassword), modifier = Modifier.fillMaxWidth(),
        )
        Button(onClick = { onVerify(code) }, enabled = !busy && code.length == 6, modifier = Modifier.fillMaxWidth()) { Text("Verify") }
    }
    if (s.confirming) TextButton(onClick = onCancel, enabled = !busy) { Text("Cancel") }
}

@Composable
private fun OfferBiometric(s: Screen.OfferBiometric, busy: Boolean, onEnable: (String) -> Unit, onSkip: () -> Unit) {
    var name by remember { mutableStateOf(android.os.Build.MODEL ?: "My phone") }
    Text("Sign in faster next time", style = androidx.compose.material3.MaterialTheme.typography.headlineSmall)
    if (s.policy == com.devicetrust.sdk.UserVerification.DEVICE_CREDENTIAL) {
        Text("Use your phone's screen lock (PIN, pattern or password) instead of your password and a code.")
    } else {
        Text("Use your fingerprint or face instead of your password and a code. Your biometric never leaves this phone.")
    }
    OutlinedTextField(name, { name = it.take(64) }, label = { Text("Name for this phone") }, singleLine = true, modifier = Modifier.fillMaxWidth())
    Button(onClick = { onEnable(name) }, enabled = !busy && name.isNotBlank(), modifier = Modifier.fillMaxWidth()) { Text("Turn on") }
    TextButton(onClick = onSkip, enabled = !busy) { Text("Not now") }
}

@Composable
private fun Home(s: Screen.Home, busy: Boolean, onRemove: (String) -> Unit, onSettings: () -> Unit, onAccounts: () -> Unit, onSignOut: () -> Unit) {
    Text("Welcome, ${s.session.userId}", style = androidx.compose.material3.MaterialTheme.typography.headlineSmall)
    Button(onClick = onSettings, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("Account settings") }
    Text("Trusted devices")
    LazyColumn(verticalArrangement = Arrangement.spacedBy(8.dp)) {
        items(s.devices, key = { it.deviceId }) { d ->
            Card(Modifier.fillMaxWidth()) {
                Row(Modifier.padding(16.dp), horizontalArrangement = Arrangement.SpaceBetween) {
                    Column(Modifier.weight(1f)) {
                        Text(d.name + if (d.isThisDevice) " (this phone)" else "")
                        Text("${d.platform}, key in ${d.keyStorage ?: "unreported storage"}")
                    }
                    TextButton(onClick = { onRemove(d.deviceId) }, enabled = !busy) { Text("Remove") }
                }
            }
        }
    }
    OutlinedButton(onClick = onAccounts, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("Switch account or add one") }
    OutlinedButton(onClick = onSignOut, enabled = !busy, modifier = Modifier.fillMaxWidth()) { Text("Log out") }
}
