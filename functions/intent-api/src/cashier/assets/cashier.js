// payloop's hosted cashier. It holds only the player's short-lived cashier
// session token (from the URL fragment, kept in this tab's sessionStorage)
// and calls /v1/cashier/* with it. Money stays a decimal string from the
// API to the screen: it is parsed as text and formatted with
// Intl.NumberFormat from the string, never through a float.
"use strict";

const STRINGS = {
  en: {
    title: "Cashier", language: "Language", tabs_label: "Deposit or withdraw",
    deposit: "Deposit", withdraw: "Withdraw", amount: "Amount", amount_other: "Other amount",
    amount_withdraw: "Amount to withdraw", method: "Payment method", method_withdraw: "Withdraw to",
    deposit_now: "Deposit", review_withdrawal: "Review withdrawal",
    confirm_title: "Check your withdrawal", fee: "Fee", you_receive: "You receive", arrives: "Arrives",
    confirm: "Confirm withdrawal", back: "Back", again: "Make another payment",
    noscript: "The cashier needs JavaScript.", working: "Please wait…",
    balance: "Balance: {amount}", limit_left: "Deposit limit left {period}: {remaining} of {limit}",
    period_day: "today", period_week: "this week", period_month: "this month",
    range: "{min} – {max}", range_min: "from {min}", range_max: "up to {max}",
    eta_hours: "within {n} hours", eta_hour: "within 1 hour", free: "free",
    m_card: "Card", m_bank_transfer: "Bank transfer", m_ewallet: "E-wallet",
    m_pay_by_bank: "Pay by bank", m_p2p: "P2P transfer", stored: "Saved: {method}",
    u_degraded: "Not available right now", u_route_unhealthy: "Temporarily unavailable",
    u_amount_out_of_range: "Not for this amount",
    s_pending: "Waiting for your payment", s_pending_text: "This page updates when the payment provider confirms.",
    s_credited: "Deposit credited", s_credited_text: "{amount} has been added to your balance.",
    s_crediting: "Payment received", s_crediting_text: "Crediting {amount} to your balance…",
    s_failed: "Payment failed", s_failed_text: "No money was taken. You can try again, perhaps with another method.",
    s_canceled: "Payment cancelled", s_canceled_text: "No money was taken.",
    s_review: "Payment under review", s_review_text: "We are checking this payment. This page updates when it is done.",
    s_declined: "Payment declined", s_declined_text: "No money was taken. Please contact support.",
    s_charged_back: "Payment reversed", s_charged_back_text: "Your bank reversed this payment.",
    w_pending: "Withdrawal requested", w_pending_text: "{amount} is on its way, expected {eta}.",
    w_succeeded: "Withdrawal sent", w_succeeded_text: "{amount} has been sent to you.",
    w_failed: "Withdrawal failed", w_failed_text: "The amount is back in your balance.",
    s_timeout: "Still processing", s_timeout_text: "This is taking longer than usual. It finishes in the background; check your balance later.",
    f_amount: "amount", f_method: "payment method", f_currency: "currency",
    f_stored_token: "saved method", f_country: "country",
    err_validation_failed: "Please check the {field}.",
    err_amount_format: "Enter an amount like {example}.", err_method_missing: "Choose a payment method.",
    err_unauthorized: "Your cashier session has expired. Please open the cashier again.",
    err_session_missing: "This cashier link is incomplete. Please open the cashier again from the site.",
    err_deposit_limit_reached: "This deposit would go over your deposit limit.",
    err_deposit_limit_required: "Please set a deposit limit before you deposit.",
    err_self_excluded: "You have excluded yourself from play, so deposits are closed.",
    err_self_exclusion_active: "You have excluded yourself from play, so deposits are closed.",
    err_risk_declined: "We cannot accept this payment. Please contact support.",
    err_kyc_required: "Please verify your identity before this withdrawal.",
    err_insufficient_funds: "Your balance is too low for this withdrawal.",
    err_wagering_incomplete: "Your deposits must be played through before you can withdraw.",
    err_payout_limit: "This is more than the largest withdrawal allowed at once.",
    err_daily_limit_reached: "You have reached today's withdrawal limit.",
    err_no_route: "This amount cannot be paid with this method. Try another amount or method.",
    err_method_unavailable: "This method is not available right now. Please choose another one.",
    err_service_unavailable: "The service is busy. Please try again in a moment.",
    err_rate_limited: "Too many attempts. Please wait a moment and try again.",
    err_request_in_progress: "Your payment is already being processed.",
    err_idempotency_key_reused: "This payment was already submitted.",
    err_psp_rejected: "The payment provider could not take this payment. Please try another method.",
    err_psp_refused: "The payment provider declined this payment. Please try another method.",
    err_not_found: "We could not find this payment.",
    err_internal_error: "Something went wrong on our side. Please try again.",
    err_network: "We could not reach the cashier. Check your connection and try again.",
    err_generic: "Something went wrong (code {code}). Please try again.",
  },
  de: {
    title: "Kasse", language: "Sprache", tabs_label: "Einzahlen oder auszahlen",
    deposit: "Einzahlen", withdraw: "Auszahlen", amount: "Betrag", amount_other: "Anderer Betrag",
    amount_withdraw: "Auszahlungsbetrag", method: "Zahlungsart", method_withdraw: "Auszahlen auf",
    deposit_now: "Einzahlen", review_withdrawal: "Auszahlung prüfen",
    confirm_title: "Auszahlung prüfen", fee: "Gebühr", you_receive: "Sie erhalten", arrives: "Eingang",
    confirm: "Auszahlung bestätigen", back: "Zurück", again: "Neue Zahlung",
    noscript: "Die Kasse benötigt JavaScript.", working: "Bitte warten…",
    balance: "Guthaben: {amount}", limit_left: "Verbleibendes Einzahlungslimit {period}: {remaining} von {limit}",
    period_day: "heute", period_week: "diese Woche", period_month: "diesen Monat",
    range: "{min} – {max}", range_min: "ab {min}", range_max: "bis {max}",
    eta_hours: "innerhalb von {n} Stunden", eta_hour: "innerhalb von 1 Stunde", free: "kostenlos",
    m_card: "Karte", m_bank_transfer: "Banküberweisung", m_ewallet: "E-Wallet",
    m_pay_by_bank: "Zahlen per Bank", m_p2p: "P2P-Überweisung", stored: "Gespeichert: {method}",
    u_degraded: "Derzeit nicht verfügbar", u_route_unhealthy: "Vorübergehend nicht verfügbar",
    u_amount_out_of_range: "Nicht für diesen Betrag",
    s_pending: "Warten auf Ihre Zahlung", s_pending_text: "Diese Seite aktualisiert sich, sobald der Zahlungsanbieter bestätigt.",
    s_credited: "Einzahlung gutgeschrieben", s_credited_text: "{amount} wurde Ihrem Guthaben gutgeschrieben.",
    s_crediting: "Zahlung erhalten", s_crediting_text: "{amount} wird Ihrem Guthaben gutgeschrieben…",
    s_failed: "Zahlung fehlgeschlagen", s_failed_text: "Es wurde kein Geld abgebucht. Versuchen Sie es erneut, eventuell mit einer anderen Zahlungsart.",
    s_canceled: "Zahlung abgebrochen", s_canceled_text: "Es wurde kein Geld abgebucht.",
    s_review: "Zahlung wird geprüft", s_review_text: "Wir prüfen diese Zahlung. Diese Seite aktualisiert sich danach.",
    s_declined: "Zahlung abgelehnt", s_declined_text: "Es wurde kein Geld abgebucht. Bitte wenden Sie sich an den Support.",
    s_charged_back: "Zahlung zurückgebucht", s_charged_back_text: "Ihre Bank hat diese Zahlung zurückgebucht.",
    w_pending: "Auszahlung beantragt", w_pending_text: "{amount} ist unterwegs, Eingang {eta}.",
    w_succeeded: "Auszahlung gesendet", w_succeeded_text: "{amount} wurde an Sie gesendet.",
    w_failed: "Auszahlung fehlgeschlagen", w_failed_text: "Der Betrag ist wieder in Ihrem Guthaben.",
    s_timeout: "Wird noch bearbeitet", s_timeout_text: "Das dauert länger als üblich. Es wird im Hintergrund abgeschlossen; prüfen Sie Ihr Guthaben später.",
    f_amount: "Betrag", f_method: "Zahlungsart", f_currency: "Währung",
    f_stored_token: "gespeicherte Zahlungsart", f_country: "Land",
    err_validation_failed: "Bitte prüfen Sie: {field}.",
    err_amount_format: "Geben Sie einen Betrag wie {example} ein.", err_method_missing: "Wählen Sie eine Zahlungsart.",
    err_unauthorized: "Ihre Kassensitzung ist abgelaufen. Bitte öffnen Sie die Kasse erneut.",
    err_session_missing: "Dieser Kassenlink ist unvollständig. Bitte öffnen Sie die Kasse erneut über die Website.",
    err_deposit_limit_reached: "Diese Einzahlung würde Ihr Einzahlungslimit überschreiten.",
    err_deposit_limit_required: "Bitte legen Sie vor der Einzahlung ein Einzahlungslimit fest.",
    err_self_excluded: "Sie haben sich selbst vom Spiel ausgeschlossen, Einzahlungen sind gesperrt.",
    err_self_exclusion_active: "Sie haben sich selbst vom Spiel ausgeschlossen, Einzahlungen sind gesperrt.",
    err_risk_declined: "Wir können diese Zahlung nicht annehmen. Bitte wenden Sie sich an den Support.",
    err_kyc_required: "Bitte bestätigen Sie Ihre Identität vor dieser Auszahlung.",
    err_insufficient_funds: "Ihr Guthaben reicht für diese Auszahlung nicht aus.",
    err_wagering_incomplete: "Ihre Einzahlungen müssen vor einer Auszahlung umgesetzt werden.",
    err_payout_limit: "Das ist mehr als die größte erlaubte Einzelauszahlung.",
    err_daily_limit_reached: "Sie haben das heutige Auszahlungslimit erreicht.",
    err_no_route: "Dieser Betrag kann mit dieser Zahlungsart nicht gezahlt werden. Versuchen Sie einen anderen Betrag oder eine andere Zahlungsart.",
    err_method_unavailable: "Diese Zahlungsart ist derzeit nicht verfügbar. Bitte wählen Sie eine andere.",
    err_service_unavailable: "Der Dienst ist ausgelastet. Bitte versuchen Sie es gleich noch einmal.",
    err_rate_limited: "Zu viele Versuche. Bitte warten Sie kurz und versuchen Sie es erneut.",
    err_request_in_progress: "Ihre Zahlung wird bereits bearbeitet.",
    err_idempotency_key_reused: "Diese Zahlung wurde bereits abgeschickt.",
    err_psp_rejected: "Der Zahlungsanbieter konnte diese Zahlung nicht annehmen. Bitte versuchen Sie eine andere Zahlungsart.",
    err_psp_refused: "Der Zahlungsanbieter hat diese Zahlung abgelehnt. Bitte versuchen Sie eine andere Zahlungsart.",
    err_not_found: "Wir konnten diese Zahlung nicht finden.",
    err_internal_error: "Bei uns ist ein Fehler aufgetreten. Bitte versuchen Sie es erneut.",
    err_network: "Die Kasse ist nicht erreichbar. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.",
    err_generic: "Etwas ist schiefgelaufen (Code {code}). Bitte versuchen Sie es erneut.",
  },
  fi: {
    title: "Kassa", language: "Kieli", tabs_label: "Talleta tai nosta",
    deposit: "Talleta", withdraw: "Nosta", amount: "Summa", amount_other: "Muu summa",
    amount_withdraw: "Nostettava summa", method: "Maksutapa", method_withdraw: "Nosto kohteeseen",
    deposit_now: "Talleta", review_withdrawal: "Tarkista nosto",
    confirm_title: "Tarkista nosto", fee: "Kulu", you_receive: "Saat", arrives: "Perillä",
    confirm: "Vahvista nosto", back: "Takaisin", again: "Uusi maksu",
    noscript: "Kassa tarvitsee JavaScriptin.", working: "Odota hetki…",
    balance: "Saldo: {amount}", limit_left: "Talletusrajaa jäljellä {period}: {remaining} / {limit}",
    period_day: "tänään", period_week: "tällä viikolla", period_month: "tässä kuussa",
    range: "{min} – {max}", range_min: "vähintään {min}", range_max: "enintään {max}",
    eta_hours: "{n} tunnin kuluessa", eta_hour: "tunnin kuluessa", free: "maksuton",
    m_card: "Kortti", m_bank_transfer: "Tilisiirto", m_ewallet: "E-lompakko",
    m_pay_by_bank: "Pankkimaksu", m_p2p: "P2P-siirto", stored: "Tallennettu: {method}",
    u_degraded: "Ei käytettävissä juuri nyt", u_route_unhealthy: "Tilapäisesti pois käytöstä",
    u_amount_out_of_range: "Ei tälle summalle",
    s_pending: "Odotetaan maksuasi", s_pending_text: "Sivu päivittyy, kun maksunvälittäjä vahvistaa maksun.",
    s_credited: "Talletus hyvitetty", s_credited_text: "{amount} on lisätty saldoosi.",
    s_crediting: "Maksu vastaanotettu", s_crediting_text: "{amount} hyvitetään saldoosi…",
    s_failed: "Maksu epäonnistui", s_failed_text: "Rahaa ei veloitettu. Voit yrittää uudelleen, vaikka toisella maksutavalla.",
    s_canceled: "Maksu peruttu", s_canceled_text: "Rahaa ei veloitettu.",
    s_review: "Maksu tarkistettavana", s_review_text: "Tarkistamme maksun. Sivu päivittyy, kun se on valmis.",
    s_declined: "Maksu hylätty", s_declined_text: "Rahaa ei veloitettu. Ota yhteyttä asiakastukeen.",
    s_charged_back: "Maksu palautettu", s_charged_back_text: "Pankkisi peruutti tämän maksun.",
    w_pending: "Nosto pyydetty", w_pending_text: "{amount} on matkalla, perillä {eta}.",
    w_succeeded: "Nosto lähetetty", w_succeeded_text: "{amount} on lähetetty sinulle.",
    w_failed: "Nosto epäonnistui", w_failed_text: "Summa on palautettu saldoosi.",
    s_timeout: "Käsittely jatkuu", s_timeout_text: "Tämä kestää tavallista kauemmin. Käsittely valmistuu taustalla; tarkista saldosi myöhemmin.",
    f_amount: "summa", f_method: "maksutapa", f_currency: "valuutta",
    f_stored_token: "tallennettu maksutapa", f_country: "maa",
    err_validation_failed: "Tarkista kenttä: {field}.",
    err_amount_format: "Anna summa muodossa {example}.", err_method_missing: "Valitse maksutapa.",
    err_unauthorized: "Kassaistuntosi on vanhentunut. Avaa kassa uudelleen.",
    err_session_missing: "Tämä kassalinkki on puutteellinen. Avaa kassa uudelleen sivustolta.",
    err_deposit_limit_reached: "Tämä talletus ylittäisi talletusrajasi.",
    err_deposit_limit_required: "Aseta talletusraja ennen tallettamista.",
    err_self_excluded: "Olet asettanut itsellesi pelieston, joten talletukset on suljettu.",
    err_self_exclusion_active: "Olet asettanut itsellesi pelieston, joten talletukset on suljettu.",
    err_risk_declined: "Emme voi hyväksyä tätä maksua. Ota yhteyttä asiakastukeen.",
    err_kyc_required: "Vahvista henkilöllisyytesi ennen tätä nostoa.",
    err_insufficient_funds: "Saldosi ei riitä tähän nostoon.",
    err_wagering_incomplete: "Talletukset on pelattava läpi ennen nostoa.",
    err_payout_limit: "Summa ylittää suurimman sallitun yksittäisen noston.",
    err_daily_limit_reached: "Olet saavuttanut tämän päivän nostorajan.",
    err_no_route: "Tätä summaa ei voi maksaa tällä maksutavalla. Kokeile toista summaa tai maksutapaa.",
    err_method_unavailable: "Tämä maksutapa ei ole nyt käytettävissä. Valitse toinen.",
    err_service_unavailable: "Palvelu on ruuhkautunut. Yritä hetken kuluttua uudelleen.",
    err_rate_limited: "Liian monta yritystä. Odota hetki ja yritä uudelleen.",
    err_request_in_progress: "Maksuasi käsitellään jo.",
    err_idempotency_key_reused: "Tämä maksu on jo lähetetty.",
    err_psp_rejected: "Maksunvälittäjä ei voinut käsitellä maksua. Kokeile toista maksutapaa.",
    err_psp_refused: "Maksunvälittäjä hylkäsi maksun. Kokeile toista maksutapaa.",
    err_not_found: "Emme löytäneet tätä maksua.",
    err_internal_error: "Meillä tapahtui virhe. Yritä uudelleen.",
    err_network: "Kassaan ei saatu yhteyttä. Tarkista yhteytesi ja yritä uudelleen.",
    err_generic: "Jokin meni vikaan (koodi {code}). Yritä uudelleen.",
  },
  sv: {
    title: "Kassa", language: "Språk", tabs_label: "Sätt in eller ta ut",
    deposit: "Sätt in", withdraw: "Ta ut", amount: "Belopp", amount_other: "Annat belopp",
    amount_withdraw: "Belopp att ta ut", method: "Betalningssätt", method_withdraw: "Ta ut till",
    deposit_now: "Sätt in", review_withdrawal: "Granska uttag",
    confirm_title: "Kontrollera ditt uttag", fee: "Avgift", you_receive: "Du får", arrives: "Kommer fram",
    confirm: "Bekräfta uttag", back: "Tillbaka", again: "Gör en ny betalning",
    noscript: "Kassan behöver JavaScript.", working: "Vänta…",
    balance: "Saldo: {amount}", limit_left: "Kvar av insättningsgränsen {period}: {remaining} av {limit}",
    period_day: "i dag", period_week: "den här veckan", period_month: "den här månaden",
    range: "{min} – {max}", range_min: "från {min}", range_max: "upp till {max}",
    eta_hours: "inom {n} timmar", eta_hour: "inom 1 timme", free: "gratis",
    m_card: "Kort", m_bank_transfer: "Banköverföring", m_ewallet: "E-plånbok",
    m_pay_by_bank: "Betala via bank", m_p2p: "P2P-överföring", stored: "Sparat: {method}",
    u_degraded: "Inte tillgängligt just nu", u_route_unhealthy: "Tillfälligt otillgängligt",
    u_amount_out_of_range: "Inte för det här beloppet",
    s_pending: "Väntar på din betalning", s_pending_text: "Sidan uppdateras när betalningsleverantören bekräftar.",
    s_credited: "Insättningen är krediterad", s_credited_text: "{amount} har lagts till ditt saldo.",
    s_crediting: "Betalningen är mottagen", s_crediting_text: "{amount} krediteras ditt saldo…",
    s_failed: "Betalningen misslyckades", s_failed_text: "Inga pengar drogs. Du kan försöka igen, kanske med ett annat betalningssätt.",
    s_canceled: "Betalningen avbröts", s_canceled_text: "Inga pengar drogs.",
    s_review: "Betalningen granskas", s_review_text: "Vi kontrollerar betalningen. Sidan uppdateras när det är klart.",
    s_declined: "Betalningen nekades", s_declined_text: "Inga pengar drogs. Kontakta kundtjänst.",
    s_charged_back: "Betalningen återfördes", s_charged_back_text: "Din bank återförde den här betalningen.",
    w_pending: "Uttag begärt", w_pending_text: "{amount} är på väg, väntas {eta}.",
    w_succeeded: "Uttaget är skickat", w_succeeded_text: "{amount} har skickats till dig.",
    w_failed: "Uttaget misslyckades", w_failed_text: "Beloppet är tillbaka på ditt saldo.",
    s_timeout: "Behandlas fortfarande", s_timeout_text: "Det tar längre tid än vanligt. Det slutförs i bakgrunden; kontrollera ditt saldo senare.",
    f_amount: "belopp", f_method: "betalningssätt", f_currency: "valuta",
    f_stored_token: "sparat betalningssätt", f_country: "land",
    err_validation_failed: "Kontrollera fältet: {field}.",
    err_amount_format: "Ange ett belopp som {example}.", err_method_missing: "Välj ett betalningssätt.",
    err_unauthorized: "Din kassasession har gått ut. Öppna kassan igen.",
    err_session_missing: "Den här kassalänken är ofullständig. Öppna kassan igen från webbplatsen.",
    err_deposit_limit_reached: "Den här insättningen skulle överskrida din insättningsgräns.",
    err_deposit_limit_required: "Ange en insättningsgräns innan du sätter in.",
    err_self_excluded: "Du har stängt av dig själv från spel, så insättningar är stängda.",
    err_self_exclusion_active: "Du har stängt av dig själv från spel, så insättningar är stängda.",
    err_risk_declined: "Vi kan inte ta emot den här betalningen. Kontakta kundtjänst.",
    err_kyc_required: "Verifiera din identitet före det här uttaget.",
    err_insufficient_funds: "Ditt saldo räcker inte för det här uttaget.",
    err_wagering_incomplete: "Dina insättningar måste omsättas innan du kan ta ut.",
    err_payout_limit: "Det är mer än det största tillåtna enskilda uttaget.",
    err_daily_limit_reached: "Du har nått dagens uttagsgräns.",
    err_no_route: "Det här beloppet kan inte betalas med det här betalningssättet. Prova ett annat belopp eller betalningssätt.",
    err_method_unavailable: "Det här betalningssättet är inte tillgängligt just nu. Välj ett annat.",
    err_service_unavailable: "Tjänsten är upptagen. Försök igen om en stund.",
    err_rate_limited: "För många försök. Vänta en stund och försök igen.",
    err_request_in_progress: "Din betalning behandlas redan.",
    err_idempotency_key_reused: "Den här betalningen har redan skickats.",
    err_psp_rejected: "Betalningsleverantören kunde inte ta emot betalningen. Prova ett annat betalningssätt.",
    err_psp_refused: "Betalningsleverantören nekade betalningen. Prova ett annat betalningssätt.",
    err_not_found: "Vi hittade inte den här betalningen.",
    err_internal_error: "Något gick fel hos oss. Försök igen.",
    err_network: "Kassan gick inte att nå. Kontrollera din anslutning och försök igen.",
    err_generic: "Något gick fel (kod {code}). Försök igen.",
  },
};

const TOKEN_KEY = "payloop.cashier.token";
const LANG_KEY = "payloop.cashier.lang";
const PENDING_KEY = "payloop.cashier.pending";
const POLL_MS = 1000;
const POLL_LIMIT = 180;
/// Codes after which the same request may be sent again under its key.
const RETRY_SAME_KEY = new Set(["network", "request_in_progress", "service_unavailable", "internal_error", "rate_limited"]);

const state = {
  lang: "en",
  token: null,
  options: { deposit: null, withdrawal: null },
  attempts: {},
  busy: false,
  status: null,
  confirming: null,
  pollTimer: null,
};

const $ = (id) => document.getElementById(id);

function t(key, vars) {
  const table = STRINGS[state.lang] || STRINGS.en;
  let text = table[key] !== undefined ? table[key] : STRINGS.en[key];
  if (text === undefined) return key;
  for (const [name, value] of Object.entries(vars || {})) {
    text = text.split("{" + name + "}").join(String(value));
  }
  return text;
}

/// A decimal string from the API, formatted for the page's language.
function money(decimal, currency) {
  if (decimal === null || decimal === undefined) return "";
  try {
    return new Intl.NumberFormat(state.lang, { style: "currency", currency }).format(decimal);
  } catch (_) {
    return decimal + " " + currency;
  }
}

function minorDigits(currency) {
  return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
}

/// What the player typed, as the API's decimal string ("25,5" → "25.50"),
/// or null. Text only: no float is ever made of an amount.
function parseAmount(text, currency) {
  const digits = minorDigits(currency);
  const s = String(text).trim().replace(/[\s\u00a0\u202f']/g, "");
  const m = /^(\d{1,12})(?:[.,](\d+))?$/.exec(s);
  if (!m) return null;
  const frac = m[2] || "";
  if (frac.length > digits) return null;
  const whole = m[1].replace(/^0+(?=\d)/, "");
  if (digits === 0) return whole;
  const out = whole + "." + frac.padEnd(digits, "0");
  return /^0\.0*$/.test(out) ? null : out;
}

function exampleAmount(currency) {
  const digits = minorDigits(currency);
  return money(digits === 0 ? "25" : "25." + "5".padEnd(digits, "0"), currency);
}

function newKey() {
  if (window.crypto && crypto.randomUUID) return "cashier-" + crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return "cashier-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/// One idempotency key per attempt: the same body keeps its key until it
/// gets a final answer, so a double click or a retry never pays twice.
function attemptKey(kind, body) {
  const text = JSON.stringify(body);
  const last = state.attempts[kind];
  if (last && last.body === text) return last.key;
  const key = newKey();
  state.attempts[kind] = { body: text, key };
  return key;
}

async function api(method, path, body, key) {
  const headers = { Authorization: "Bearer " + state.token, Accept: "application/json" };
  if (body) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined, cache: "no-store" });
  } catch (_) {
    return { ok: false, error: { code: "network" } };
  }
  let json = null;
  try {
    json = await resp.json();
  } catch (_) {
    json = null;
  }
  if (resp.ok && json) return { ok: true, status: resp.status, json };
  const code = json && typeof json.error === "string" ? json.error : "http_" + resp.status;
  return { ok: false, error: { code, details: (json && json.details) || {} } };
}

/// An API error as a sentence of the page's language (never its JSON).
function errorSentence(error) {
  if (error.code === "amount_format") {
    const o = state.options.deposit || state.options.withdrawal;
    return t("err_amount_format", { example: o ? exampleAmount(o.currency) : "25.50" });
  }
  if (error.code === "validation_failed") {
    const field = error.details && error.details.field;
    const known = field && STRINGS.en["f_" + field] !== undefined;
    return t("err_validation_failed", { field: known ? t("f_" + field) : t("f_amount") });
  }
  const key = "err_" + error.code;
  if (STRINGS.en[key] !== undefined) return t(key);
  return t("err_generic", { code: String(error.code).replace(/[^a-z0-9_]/gi, "") });
}

function showError(error) {
  const box = $("error");
  box.textContent = errorSentence(error);
  box.dataset.code = error.code;
  box.hidden = false;
  box.focus();
}

function clearError() {
  const box = $("error");
  box.hidden = true;
  box.textContent = "";
  delete box.dataset.code;
}

function setBusy(button, busy) {
  state.busy = busy;
  button.disabled = busy;
  button.setAttribute("aria-busy", busy ? "true" : "false");
  button.textContent = busy ? t("working") : t(button.dataset.t);
}

// ---- rendering ---------------------------------------------------------

function applyStrings() {
  document.documentElement.lang = state.lang;
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-t]")) {
    if (!(el.getAttribute("aria-busy") === "true")) el.textContent = t(el.dataset.t);
  }
  $("lang-select").value = state.lang;
  renderDeposit();
  renderWithdrawal();
  renderStatus();
  const box = $("error");
  if (!box.hidden && box.dataset.code) box.textContent = errorSentence({ code: box.dataset.code, details: {} });
}

function rangeText(m, currency) {
  const min = m.min_amount && money(m.min_amount, currency);
  const max = m.max_amount && money(m.max_amount, currency);
  if (min && max) return t("range", { min, max });
  if (min) return t("range_min", { min });
  if (max) return t("range_max", { max });
  return "";
}

function etaText(hours) {
  if (!hours) return "";
  return hours === 1 ? t("eta_hour") : t("eta_hours", { n: hours });
}

function methodChoice(container, prefix, value, title, note, disabled, method) {
  const input = document.createElement("input");
  input.type = "radio";
  input.name = prefix + "-method";
  input.id = prefix + "-method-" + value.replace(/[^a-z0-9_-]/gi, "_");
  input.value = value;
  input.dataset.method = method;
  input.disabled = disabled;
  const label = document.createElement("label");
  label.htmlFor = input.id;
  label.textContent = title;
  if (note) {
    const small = document.createElement("small");
    small.textContent = note;
    label.appendChild(small);
  }
  container.append(input, label);
  return input;
}

function keepChoice(container, name, previous) {
  const again = previous && container.querySelector('input[value="' + CSS.escape(previous) + '"]');
  if (again && !again.disabled) again.checked = true;
}

function renderDeposit() {
  const o = state.options.deposit;
  if (!o) return;
  $("balance").textContent = t("balance", { amount: money(o.balance_available, o.currency) });
  $("deposit-currency").textContent = o.currency;
  const presets = $("deposit-presets");
  presets.replaceChildren();
  const typed = parseAmount($("deposit-amount").value, o.currency);
  for (const p of o.presets) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "preset";
    b.dataset.amount = p;
    b.textContent = money(p, o.currency);
    b.setAttribute("aria-pressed", typed === p ? "true" : "false");
    b.addEventListener("click", () => {
      $("deposit-amount").value = p;
      refreshDeposit();
    });
    presets.appendChild(b);
  }
  const hint = o.limits.map((l) =>
    t("limit_left", { period: t("period_" + l.period), remaining: money(l.remaining, o.currency), limit: money(l.limit, o.currency) }));
  $("deposit-hint").textContent = hint.join(" · ");
  const box = $("deposit-methods");
  const previous = (box.querySelector("input:checked") || {}).value;
  box.replaceChildren();
  for (const s of o.stored_methods) {
    const m = o.methods.find((x) => x.method === s.method);
    methodChoice(box, "deposit", "stored:" + s.token, t("stored", { method: t("m_" + s.method) }), s.psp,
      !m || !m.available, s.method);
  }
  for (const m of o.methods) {
    const note = m.available ? rangeText(m, o.currency) : t("u_" + m.unavailable_reason);
    methodChoice(box, "deposit", m.method, t("m_" + m.method), note, !m.available, m.method);
  }
  keepChoice(box, "deposit-method", previous);
}

function renderWithdrawal() {
  const o = state.options.withdrawal;
  if (!o) return;
  $("withdraw-currency").textContent = o.currency;
  const box = $("withdraw-methods");
  const previous = (box.querySelector("input:checked") || {}).value;
  box.replaceChildren();
  for (const m of o.methods) {
    const fee = m.fee && /^0(\.0+)?$/.test(m.fee) ? t("free") : money(m.fee, o.currency);
    const note = m.available ? [t("fee") + ": " + fee, etaText(m.eta_hours)].filter(Boolean).join(" · ")
      : t("u_" + m.unavailable_reason);
    methodChoice(box, "withdraw", m.method, t("m_" + m.method), note, !m.available, m.method);
  }
  keepChoice(box, "withdraw-method", previous);
  const c = state.confirming;
  if (c) {
    $("confirm-amount").textContent = money(c.amount, o.currency);
    $("confirm-fee").textContent = money(c.method.fee, o.currency);
    $("confirm-receive").textContent = money(c.method.you_receive, o.currency);
    $("confirm-eta").textContent = etaText(c.method.eta_hours);
  }
}

// ---- options -----------------------------------------------------------

function browserCountry() {
  const tag = navigator.language || "";
  const region = tag.split("-")[1];
  return region && /^[A-Z]{2}$/.test(region) ? region : null;
}

async function loadOptions(kind, amount) {
  const q = new URLSearchParams({ kind });
  if (amount) q.set("amount", amount);
  const country = browserCountry();
  if (country) q.set("country", country);
  const r = await api("GET", "/v1/cashier/options?" + q.toString());
  if (!r.ok) {
    showError(r.error);
    return null;
  }
  state.options[kind === "deposit" ? "deposit" : "withdrawal"] = r.json;
  return r.json;
}

let refreshTimer = null;
function refreshDeposit() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    const o = state.options.deposit;
    const amount = o && parseAmount($("deposit-amount").value, o.currency);
    if (await loadOptions("deposit", amount)) renderDeposit();
  }, 250);
}

// ---- deposit -----------------------------------------------------------

async function submitDeposit(event) {
  event.preventDefault();
  if (state.busy) return;
  clearError();
  const o = state.options.deposit;
  if (!o) return;
  const amount = parseAmount($("deposit-amount").value, o.currency);
  if (!amount) return showError({ code: "amount_format" });
  const choice = $("deposit-methods").querySelector("input:checked");
  if (!choice) return showError({ code: "method_missing" });
  const body = { amount, currency: o.currency, method: choice.dataset.method };
  if (choice.value.startsWith("stored:")) body.stored_token = choice.value.slice("stored:".length);
  const country = browserCountry();
  if (!o.country && country) body.country = country;
  const button = $("deposit-submit");
  setBusy(button, true);
  const r = await api("POST", "/v1/cashier/deposits", body, attemptKey("deposit", body));
  if (!r.ok) {
    if (!RETRY_SAME_KEY.has(r.error.code)) delete state.attempts.deposit;
    setBusy(button, false);
    return showError(r.error);
  }
  delete state.attempts.deposit;
  const pending = { kind: "deposit", id: r.json.payment_id, currency: o.currency };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  if (r.json.redirect_url) {
    location.assign(r.json.redirect_url);
    return;
  }
  setBusy(button, false);
  followPending(pending);
}

// ---- withdrawal --------------------------------------------------------

async function reviewWithdrawal(event) {
  event.preventDefault();
  if (state.busy) return;
  clearError();
  const o = state.options.withdrawal;
  if (!o) return;
  const amount = parseAmount($("withdraw-amount").value, o.currency);
  if (!amount) return showError({ code: "amount_format" });
  const choice = $("withdraw-methods").querySelector("input:checked");
  if (!choice) return showError({ code: "method_missing" });
  const button = $("withdraw-review");
  setBusy(button, true);
  const fresh = await loadOptions("withdrawal", amount);
  setBusy(button, false);
  if (!fresh) return;
  const m = fresh.methods.find((x) => x.method === choice.dataset.method);
  if (!m || !m.available) return showError({ code: "method_unavailable" });
  state.confirming = { amount, method: m };
  renderWithdrawal();
  $("withdraw-form").hidden = true;
  $("withdraw-confirm").hidden = false;
  $("withdraw-confirm-button").focus();
}

function backToWithdrawal() {
  state.confirming = null;
  $("withdraw-confirm").hidden = true;
  $("withdraw-form").hidden = false;
  $("withdraw-amount").focus();
}

async function confirmWithdrawal() {
  if (state.busy || !state.confirming) return;
  clearError();
  const o = state.options.withdrawal;
  const c = state.confirming;
  const body = { amount: c.amount, currency: o.currency, method: c.method.method };
  const button = $("withdraw-confirm-button");
  setBusy(button, true);
  const r = await api("POST", "/v1/cashier/withdrawals", body, attemptKey("withdrawal", body));
  setBusy(button, false);
  if (!r.ok) {
    if (!RETRY_SAME_KEY.has(r.error.code)) delete state.attempts.withdrawal;
    return showError(r.error);
  }
  delete state.attempts.withdrawal;
  const pending = { kind: "withdrawal", id: r.json.withdrawal_id, currency: o.currency, eta: c.method.eta_hours };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  state.confirming = null;
  followPending(pending);
}

// ---- status ------------------------------------------------------------

function renderStatus() {
  const s = state.status;
  if (!s) return;
  const title = $("status-title");
  title.textContent = t(s.title);
  title.className = s.tone || "";
  $("status-text").textContent = t(s.text, s.vars);
  $("status").dataset.state = s.state;
}

function showStatusView() {
  $("tabs").hidden = true;
  $("panel-deposit").hidden = true;
  $("panel-withdraw").hidden = true;
  $("status").hidden = false;
}

function depositStatus(p, currency) {
  const vars = { amount: money(p.amount, p.currency || currency) };
  if (p.status === "captured" && p.credited) return { state: "credited", title: "s_credited", text: "s_credited_text", tone: "ok", vars, done: true };
  if (p.status === "captured") return { state: "crediting", title: "s_crediting", text: "s_crediting_text", vars };
  const known = ["failed", "canceled", "review", "declined", "charged_back"];
  if (known.includes(p.status)) {
    return { state: p.status, title: "s_" + p.status, text: "s_" + p.status + "_text", tone: p.status === "review" ? "" : "bad", vars, done: p.is_final };
  }
  return { state: "pending", title: "s_pending", text: "s_pending_text", vars };
}

function withdrawalStatus(w, pending) {
  const vars = { amount: money(w.amount, w.currency || pending.currency), eta: etaText(pending.eta) };
  if (w.status === "succeeded") return { state: "succeeded", title: "w_succeeded", text: "w_succeeded_text", tone: "ok", vars, done: true };
  if (w.status === "failed") return { state: "failed", title: "w_failed", text: "w_failed_text", tone: "bad", vars, done: true };
  return { state: "pending", title: "w_pending", text: "w_pending_text", vars };
}

function followPending(pending) {
  showStatusView();
  let polls = 0;
  const path = pending.kind === "deposit" ? "/v1/cashier/payments/" : "/v1/cashier/withdrawals/";
  const tick = async () => {
    polls += 1;
    const r = await api("GET", path + encodeURIComponent(pending.id));
    if (!r.ok && r.error.code !== "network" && r.error.code !== "service_unavailable") {
      sessionStorage.removeItem(PENDING_KEY);
      $("status-again").hidden = false;
      return showError(r.error);
    }
    if (r.ok) {
      state.status = pending.kind === "deposit" ? depositStatus(r.json, pending.currency) : withdrawalStatus(r.json, pending);
      renderStatus();
      if (state.status.done) {
        sessionStorage.removeItem(PENDING_KEY);
        $("status-again").hidden = false;
        $("status-title").focus();
        return;
      }
    }
    if (polls >= POLL_LIMIT) {
      state.status = { state: "timeout", title: "s_timeout", text: "s_timeout_text" };
      renderStatus();
      $("status-again").hidden = false;
      return;
    }
    state.pollTimer = setTimeout(tick, POLL_MS);
  };
  tick();
}

function startOver() {
  clearTimeout(state.pollTimer);
  state.status = null;
  sessionStorage.removeItem(PENDING_KEY);
  location.assign("/cashier");
}

// ---- tabs --------------------------------------------------------------

function selectTab(which, focus) {
  const tabs = [$("tab-deposit"), $("tab-withdraw")];
  for (const tab of tabs) {
    const on = tab.id === "tab-" + which;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.tabIndex = on ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !on;
    if (on && focus) tab.focus();
  }
  clearError();
  if (which === "withdraw" && !state.options.withdrawal) {
    loadOptions("withdrawal").then((o) => o && renderWithdrawal());
  }
}

function tabKeys(event) {
  if (event.key !== "ArrowLeft" && event.key !== "ArrowRight" && event.key !== "Home" && event.key !== "End") return;
  event.preventDefault();
  const depositOn = $("tab-deposit").getAttribute("aria-selected") === "true";
  let next = depositOn ? "withdraw" : "deposit";
  if (event.key === "Home") next = "deposit";
  if (event.key === "End") next = "withdraw";
  selectTab(next, true);
}

// ---- start -------------------------------------------------------------

function takeToken() {
  const hash = location.hash.slice(1);
  if (/^cs_[A-Za-z0-9_-]{43}$/.test(hash)) {
    // A new session starts afresh: nothing of an earlier one is followed.
    if (sessionStorage.getItem(TOKEN_KEY) !== hash) sessionStorage.removeItem(PENDING_KEY);
    sessionStorage.setItem(TOKEN_KEY, hash);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function chooseLanguage() {
  const stored = sessionStorage.getItem(LANG_KEY);
  const served = document.documentElement.lang;
  state.lang = STRINGS[stored] ? stored : STRINGS[served] ? served : "en";
}

async function start() {
  chooseLanguage();
  $("lang-select").addEventListener("change", (e) => {
    if (!STRINGS[e.target.value]) return;
    state.lang = e.target.value;
    sessionStorage.setItem(LANG_KEY, state.lang);
    applyStrings();
  });
  $("tab-deposit").addEventListener("click", () => selectTab("deposit", false));
  $("tab-withdraw").addEventListener("click", () => selectTab("withdraw", false));
  $("tabs").addEventListener("keydown", tabKeys);
  $("deposit-form").addEventListener("submit", submitDeposit);
  $("deposit-amount").addEventListener("input", refreshDeposit);
  $("withdraw-form").addEventListener("submit", reviewWithdrawal);
  $("withdraw-confirm-button").addEventListener("click", confirmWithdrawal);
  $("withdraw-back").addEventListener("click", backToWithdrawal);
  $("status-again").addEventListener("click", startOver);
  applyStrings();
  state.token = takeToken();
  if (!state.token) {
    $("tabs").hidden = true;
    $("panel-deposit").hidden = true;
    return showError({ code: "session_missing" });
  }
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
  if (pending && pending.id) return followPending(pending);
  if (await loadOptions("deposit")) renderDeposit();
  document.body.dataset.ready = "true";
}

window.payloopCashier = { strings: STRINGS };
document.addEventListener("DOMContentLoaded", start);
