// The demo payment page's script: plain DOM, no framework. It calls only
// this server's /demo/api/ routes; the gateway token stays on the server.
'use strict';

const $ = (id) => document.getElementById(id);

const REASONS = {
  ok: 'the PIN is good for this payment',
  wrong_code: 'the PIN is wrong, expired, or was sent for another amount or merchant',
  replayed: 'this PIN was already used',
  too_many_failures: 'too many wrong PINs: the card\'s dynamic PINs are blocked for a while',
};

// Errors of the bank, of Harim and of this page's server, in plain words.
const ERRORS = {
  issuer_unavailable: 'the bank is not reachable just now: try again in a while, or pay with another card',
  rate_limited: 'too many requests: please wait a little and try again',
  harim_unreachable: 'Harim (the Central Bank\'s dynamic PIN service) is not reachable',
  harim_timeout: 'Harim (the Central Bank\'s dynamic PIN service) did not answer in time',
  unauthorized: 'the payment gateway\'s token was refused',
  forbidden: 'the payment gateway\'s token may not do this',
  request_timeout: 'the request took too long',
  unknown_payee: 'the bank does not know this merchant',
};

async function post(path, body) {
  const r = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  let json = null;
  try {
    json = await r.json();
  } catch (_) {
    json = null;
  }
  return { status: r.status, json };
}

function fields() {
  return {
    pan: $('pan').value,
    amount: $('amount').value,
    payee_id: $('payee-id').value,
    type: $('tx-type').value,
  };
}

// The payment request as a QR code, rendered by the server as SVG; the
// app scans it and makes the PIN for exactly this request.
$('show-qr').addEventListener('click', async () => {
  const f = fields();
  const box = $('qr');
  box.dataset.state = 'pending';
  const r = await post('/demo/api/payment-request', {
    amount: f.amount,
    payee_id: f.payee_id,
    name: $('payee-name').value,
    type: f.type,
  });
  if (r.status === 200 && r.json) {
    const svg = new DOMParser().parseFromString(r.json.svg, 'image/svg+xml').documentElement;
    box.replaceChildren(document.importNode(svg, true));
    box.dataset.state = 'shown';
    box.dataset.expiresAt = String(r.json.expires_at);
    $('qr-uri').textContent = r.json.uri;
  } else {
    box.replaceChildren();
    box.dataset.state = 'error';
    $('qr-uri').textContent = 'No QR code: ' + message(r.json, r.status);
  }
});

function message(json, status) {
  if (json && json.error && ERRORS[json.error]) {
    return ERRORS[json.error] + ' (' + json.error + ').';
  }
  return json && json.message ? json.message : 'HTTP ' + status;
}

$('request-pin').addEventListener('click', async () => {
  const s = $('request-status');
  s.dataset.state = 'pending';
  s.dataset.error = '';
  s.textContent = 'Requesting a dynamic PIN…';
  const r = await post('/demo/api/otp-request', fields());
  if (r.status === 202) {
    s.dataset.state = 'requested';
    s.textContent = 'Requested: if the card is registered, its phone gets a PIN by SMS, valid for '
      + Math.round(r.json.valid_for_secs / 60) + ' minutes.';
  } else if (r.status === 429 && r.json && r.json.retry_after_secs) {
    s.dataset.state = 'rate_limited';
    s.textContent = 'Please wait ' + r.json.retry_after_secs + ' seconds before asking for another PIN.';
  } else {
    s.dataset.state = 'error';
    s.dataset.error = r.json && r.json.error ? r.json.error : String(r.status);
    s.textContent = 'Not requested: ' + message(r.json, r.status);
  }
  refreshOutbox();
});

$('pay-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const res = $('result');
  res.dataset.result = 'pending';
  res.dataset.reason = '';
  res.textContent = 'Asking the bank…';
  const f = fields();
  const r = await post('/demo/api/pay', {
    pan: f.pan,
    amount: f.amount,
    payee_id: f.payee_id,
    type: f.type,
    code: $('pin').value,
  });
  if (r.status === 200 && r.json) {
    res.dataset.result = r.json.result;
    res.dataset.reason = r.json.reason;
    const why = REASONS[r.json.reason] || r.json.reason;
    if (r.json.result === 'accepted') {
      res.textContent = 'Accepted: ' + f.amount + ' Rials paid to merchant ' + f.payee_id + '.';
    } else {
      res.textContent = (r.json.result === 'blocked' ? 'Blocked' : 'Rejected') + ': ' + why
        + ' (' + r.json.reason + ').';
    }
  } else {
    res.dataset.result = 'error';
    res.dataset.reason = r.json && r.json.error ? r.json.error : String(r.status);
    res.textContent = 'Not sent to the bank: ' + message(r.json, r.status);
  }
  refreshOutbox();
});

async function refreshOutbox() {
  let j;
  try {
    const r = await fetch('/demo/api/outbox', { cache: 'no-store' });
    j = await r.json();
  } catch (_) {
    return;
  }
  const items = (j.messages || []).map((m) => {
    const li = document.createElement('li');
    li.className = 'sms';
    const meta = document.createElement('div');
    meta.className = 'sms-meta';
    meta.textContent = (m.bank ? m.bank + ': ' : '') + m.from + ' → ' + m.to + ' · '
      + new Date(m.created_at * 1000).toISOString().slice(11, 19) + ' UTC';
    const body = document.createElement('div');
    body.className = 'sms-body';
    body.dir = 'auto';
    body.textContent = m.body;
    li.append(meta, body);
    return li;
  });
  const down = j.unreachable || [];
  $('outbox-unreachable').textContent = down.length
    ? 'Not reachable just now: ' + down.join(', ') + '.' : '';
  const list = $('outbox');
  list.replaceChildren(...items);
  list.dataset.count = String(items.length);
}

refreshOutbox();
setInterval(refreshOutbox, 1000);
