package com.devicetrust.sample.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.ColumnScope
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.Button
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.text.input.PasswordVisualTransformation
import androidx.compose.ui.unit.dp
import com.devicetrust.sdk.OtpChannel
import com.devicetrust.sdk.PasswordPolicy
import com.devicetrust.sample.flow.Screen
import com.devicetrust.sample.flow.SignInFlow
import com.devicetrust.sample.flow.passwordChecks
import com.devicetrust.sample.flow.passwordLooksAcceptable

/** Online access from a card, "forgot user ID" and "forgot password": the screens before a sign-in. */
@Composable
internal fun SignedOutScreens(s: Screen, flow: SignInFlow, busy: Boolean, act: (suspend () -> Unit) -> Unit) {
    when (s) {
        is Screen.CreateAccount -> CreateAccount(
            s, busy,
            onCreate = { number, id, name, user, password -> act { flow.createAccount(number, id, name, user, password) } },
            onBack = { act { flow.backToSignIn() } },
        )
        is Screen.ForgotUserId -> ForgotUserId(s, busy, onSend = { email, code -> act { flow.forgotUserId(email, code) } }, onBack = { act { flow.backToSignIn() } })
        is Screen.RecoveryStart -> RecoveryStart(s, busy, onContinue = { user, code -> act { flow.startPasswordRecovery(user, code) } }, onBack = { act { flow.backToSignIn() } })
        is Screen.RecoveryCode -> RecoveryCode(
            s, busy,
            onSend = { channel -> act { flow.sendRecoveryCode(channel) } },
            onContinue = { code -> act { flow.recoveryCodeEntered(code) } },
            onBack = { act { flow.backToSignIn() } },
        )
        is Screen.RecoveryNewPassword -> RecoveryNewPassword(s, busy, onChange = { password -> act { flow.completePasswordRecovery(password) } }, onBack = { act { flow.backToSignIn() } })
        else -> Unit
    }
}

/** A form taller than the screen scrolls (the app's root column does not: Home holds a lazy list). */
@Composable
internal fun Scrolling(content: @Composable ColumnScope.() -> Unit) {
    Column(Modifier.verticalScroll(rememberScrollState()), verticalArrangement = Arrangement.spacedBy(12.dp), content = content)
}

/** A password field. */
@Composable
internal fun PasswordField(value: String, onChange: (String) -> Unit, label: String) {
    OutlinedTextField(
        value, onChange, label = { Text(label) }, singleLine = true,
        visualTransformation = PasswordVisualTransformation(),
        keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Password),
        modifier = Modifier.fillMaxWidth(),
    )
}

/** A digits-only field (security code, card ID, one-time code), hidden unless [visible]. */
@Composable
internal fun DigitsField(value: String, onChange: (String) -> Unit, label: String, maxLength: Int, visible: Boolean = false) {
    OutlinedTextField(
        value, { onChange(it.filter(Char::isDigit).take(maxLength)) }, label = { Text(label) }, singleLine = true,
        visualTransformation = if (visible) androidx.compose.ui.text.input.VisualTransformation.None else PasswordVisualTransformation(),
        keyboardOptions = KeyboardOptions(keyboardType = if (visible) KeyboardType.Number else KeyboardType.NumberPassword),
        modifier = Modifier.fillMaxWidth(),
    )
}

/**
 * The new password with the policy's rules ticked off as the user types (the
 * SDK's local check); the server still checks common passwords and the
 * current one, and answers with every rule broken.
 */
@Composable
internal fun NewPasswordFields(policy: PasswordPolicy?, userId: String, password: String, onPassword: (String) -> Unit, repeat: String, onRepeat: (String) -> Unit) {
    PasswordField(password, onPassword, "New password")
    policy?.let { Text(it.description, style = MaterialTheme.typography.bodySmall) }
    passwordChecks(policy, password, userId).forEach { rule ->
        Text(
            (if (rule.met) "✓ " else "✗ ") + rule.text,
            color = if (rule.met) MaterialTheme.colorScheme.primary else MaterialTheme.colorScheme.error,
            style = MaterialTheme.typography.bodySmall,
        )
    }
    PasswordField(repeat, onRepeat, "Repeat the new password")
    if (repeat.isNotEmpty() && repeat != password) {
        Text("The passwords don't match", color = MaterialTheme.colorScheme.error, style = MaterialTheme.typography.bodySmall)
    }
}

internal fun newPasswordReady(policy: PasswordPolicy?, userId: String, password: String, repeat: String) =
    password == repeat && passwordLooksAcceptable(policy, password, userId)

@Composable
private fun CreateAccount(s: Screen.CreateAccount, busy: Boolean, onCreate: (String, String, String, String, String) -> Unit, onBack: () -> Unit) {
    var number by remember { mutableStateOf("") }
    var cardId by remember { mutableStateOf("") }
    var name by remember { mutableStateOf("") }
    var user by remember { mutableStateOf("") }
    var password by remember { mutableStateOf("") }
    var repeat by remember { mutableStateOf("") }
    Scrolling {
        Text("Create online access", style = MaterialTheme.typography.headlineSmall)
        Text("Have your card in front of you. The card ID is the 4-digit number printed on the front.")
        DigitsField(number, { number = it }, "Card number", 19, visible = true)
        DigitsField(cardId, { cardId = it }, "Card ID (4 digits)", 4, visible = true)
        OutlinedTextField(name, { name = it }, label = { Text("Name as on the card") }, singleLine = true, modifier = Modifier.fillMaxWidth())
        OutlinedTextField(user, { user = it.trim() }, label = { Text("Choose a user ID") }, singleLine = true, modifier = Modifier.fillMaxWidth())
        NewPasswordFields(s.policy, user, password, { password = it }, repeat, { repeat = it })
        Button(
            onClick = { onCreate(number, cardId, name, user, password) },
            enabled = !busy && number.length >= 12 && cardId.length == 4 && name.isNotBlank() && user.isNotBlank() && newPasswordReady(s.policy, user, password, repeat),
            modifier = Modifier.fillMaxWidth(),
        ) { Text("Create online access") }
        TextButton(onClick = onBack, enabled = !busy) { Text("Back to log in") }
    }
}

@Composable
private fun ForgotUserId(s: Screen.ForgotUserId, busy: Boolean, onSend: (String, String) -> Unit, onBack: () -> Unit) {
    var email by remember { mutableStateOf("") }
    var code by remember { mutableStateOf("") }
    Text("Forgot your user ID?", style = MaterialTheme.typography.headlineSmall)
    if (s.sent) {
        // The server never says whether anything matched.
        Text("If the details match an account, we've e-mailed your user ID to that address.")
        Button(onClick = onBack, modifier = Modifier.fillMaxWidth()) { Text("Back to log in") }
        return
    }
    Text("Enter your e-mail and the security code you chose when you first logged in.")
    OutlinedTextField(
        email, { email = it.trim() }, label = { Text("E-mail") }, singleLine = true,
        keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Email), modifier = Modifier.fillMaxWidth(),
    )
    DigitsField(code, { code = it }, "Security code (6-9 digits)", 9)
    Button(onClick = { onSend(email, code) }, enabled = !busy && email.contains('@') && code.length >= 6, modifier = Modifier.fillMaxWidth()) { Text("E-mail my user ID") }
    TextButton(onClick = onBack, enabled = !busy) { Text("Back to log in") }
}

@Composable
private fun RecoveryStart(s: Screen.RecoveryStart, busy: Boolean, onContinue: (String, String) -> Unit, onBack: () -> Unit) {
    var user by remember(s.userId) { mutableStateOf(s.userId) }
    var code by remember { mutableStateOf("") }
    Text("Reset your password", style = MaterialTheme.typography.headlineSmall)
    Text("Enter your user ID and the security code you chose when you first logged in. Then we'll send you a code.")
    OutlinedTextField(user, { user = it.trim() }, label = { Text("User ID") }, singleLine = true, modifier = Modifier.fillMaxWidth())
    DigitsField(code, { code = it }, "Security code (6-9 digits)", 9)
    Button(onClick = { onContinue(user, code) }, enabled = !busy && user.isNotBlank() && code.length >= 6, modifier = Modifier.fillMaxWidth()) { Text("Continue") }
    TextButton(onClick = onBack, enabled = !busy) { Text("Back to log in") }
}

@Composable
private fun RecoveryCode(s: Screen.RecoveryCode, busy: Boolean, onSend: (OtpChannel) -> Unit, onContinue: (String) -> Unit, onBack: () -> Unit) {
    var code by remember(s.sentTo) { mutableStateOf("") }
    Text("Verify it's you", style = MaterialTheme.typography.headlineSmall)
    s.options.forEach { o ->
        OutlinedButton(onClick = { onSend(o.channel) }, enabled = !busy, modifier = Modifier.fillMaxWidth()) {
            Text("Send a code by ${if (o.channel == OtpChannel.SMS) "SMS" else "e-mail"} to ${o.destination}")
        }
    }
    s.sentTo?.let { destination ->
        Text("We sent a code to $destination.")
        DigitsField(code, { code = it }, "6-digit code", 6, visible = true)
        Button(onClick = { onContinue(code) }, enabled = !busy && code.length == 6, modifier = Modifier.fillMaxWidth()) { Text("Continue") }
    }
    TextButton(onClick = onBack, enabled = !busy) { Text("Cancel") }
}

@Composable
private fun RecoveryNewPassword(s: Screen.RecoveryNewPassword, busy: Boolean, onChange: (String) -> Unit, onBack: () -> Unit) {
    var password by remember { mutableStateOf("") }
    var repeat by remember { mutableStateOf("") }
    Scrolling {
        Text("Choose a new password", style = MaterialTheme.typography.headlineSmall)
        Text("You'll be logged out everywhere. Fingerprint or face sign-in comes back after you log in once with the new password and a code.")
        NewPasswordFields(s.policy, s.userId, password, { password = it }, repeat, { repeat = it })
        Button(onClick = { onChange(password) }, enabled = !busy && newPasswordReady(s.policy, s.userId, password, repeat), modifier = Modifier.fillMaxWidth()) {
            Text("Change password")
        }
        TextButton(onClick = onBack, enabled = !busy) { Text("Cancel") }
    }
}
