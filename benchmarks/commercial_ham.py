# ruff: noqa: E501
# (message text keeps its real line lengths)
"""Six hand-written legitimate commercial messages: a check that such mail is not flagged.

Written for Postwise (never trained on, not from any corpus): a shipping notice, a newsletter,
a receipt, a password reset, a bank statement notice and a shop promotion.

    uv run python benchmarks/commercial_ham.py /tmp/commercial_ham
    uv run postwise eval inbound --data /tmp/commercial_ham --json"""

from __future__ import annotations

from pathlib import Path

MESSAGES: dict[str, str] = {
    "ham/01-shipping.eml": """\
From: "Amazon.com" <shipment-tracking@amazon.com>
To: alex.morgan@example.com
Subject: Your Amazon.com order #112-4471829-5520231 has shipped
Date: Tue, 03 Mar 2026 09:14:22 +0000
Message-ID: <0100018e1c2a7b3f-5d2e@email.amazonses.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=UTF-8

Hello Alex,

Your package is on the way. Track your package:
https://www.amazon.com/gp/your-account/ship-track?orderId=112-4471829-5520231

Arriving: Thursday, March 5
Ship to: Alex Morgan, 12 Elm Street, Springfield

Order #112-4471829-5520231
  Anker USB-C Charger 65W     Qty: 1    $35.99

Return or replace items in Your Orders: https://www.amazon.com/your-orders

We hope to see you again soon.
Amazon.com

--b1
Content-Type: text/html; charset=UTF-8

<html><body style="font-family:Arial,sans-serif">
<table width="100%" cellpadding="0" cellspacing="0"><tr><td>
<img src="https://m.media-amazon.com/images/G/01/outbound/logo.png" alt="amazon">
<h2 style="color:#232f3e">Your package is on the way</h2>
<p>Hello Alex,</p>
<p>Arriving: <b>Thursday, March 5</b></p>
<p><a href="https://www.amazon.com/gp/your-account/ship-track?orderId=112-4471829-5520231" style="background:#ffd814;padding:8px 16px">Track package</a></p>
<table><tr><td>Anker USB-C Charger 65W</td><td>Qty: 1</td><td>$35.99</td></tr></table>
<p><a href="https://www.amazon.com/your-orders">Return or replace items</a> in Your Orders.</p>
<p style="font-size:11px;color:#666">This email was sent from a notification-only address that cannot accept incoming email. Please do not reply to this message.</p>
</td></tr></table></body></html>
--b1--
""",
    "ham/02-newsletter.eml": """\
From: "The Weekly Commit" <newsletter@weeklycommit.dev>
To: sam.lee@example.net
Subject: Issue #142: faster builds, a new SQLite release, and what we're reading
Date: Fri, 06 Mar 2026 15:00:03 +0000
Message-ID: <20260306150003.142.weeklycommit@mail.weeklycommit.dev>
List-Unsubscribe: <https://weeklycommit.dev/unsubscribe?u=8f2a91>, <mailto:unsubscribe@weeklycommit.dev>
List-Unsubscribe-Post: List-Unsubscribe=One-Click
MIME-Version: 1.0
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<html><head><style>td{font-family:Helvetica,sans-serif}</style></head><body>
<div style=3D"display:none;max-height:0">This week: build caches, SQLite 3.52, and our reading list.</div>
<table width=3D"600" align=3D"center"><tr><td>
<h1>The Weekly Commit #142</h1>
<p>Hi there, welcome to this week's issue. Here's what caught our eye.</p>
<h3><a href=3D"https://click.weeklycommit.dev/l/aHR0cHM6Ly9leGFtcGxlLm9yZy9idWlsZC1jYWNoZQ">Build caches that actually work</a></h3>
<p>A long read on remote caching for monorepos, with numbers from three teams.</p>
<h3><a href=3D"https://click.weeklycommit.dev/l/c3FsaXRl">SQLite 3.52 released</a></h3>
<p>JSONB improvements and a faster query planner for large IN lists.</p>
<h3><a href=3D"https://click.weeklycommit.dev/l/cmVhZGluZw">What we're reading</a></h3>
<p>Papers on consensus, a history of the Unix shell, and a great talk on testing.</p>
<p>Sponsored: <a href=3D"https://click.weeklycommit.dev/l/c3BvbnNvcg">Try Honeycomb free for 30 days</a></p>
<p style=3D"font-size:12px;color:#888">You're receiving this because you subscribed at weeklycommit.dev.
<a href=3D"https://weeklycommit.dev/unsubscribe?u=3D8f2a91">Unsubscribe</a> | <a href=3D"https://weeklycommit.dev/preferences?u=3D8f2a91">Update preferences</a><br>
The Weekly Commit, 548 Market St, San Francisco, CA 94104</p>
</td></tr></table></body></html>
""",
    "ham/03-receipt.eml": """\
From: Stripe Receipts <receipts+acct_1Mx2@stripe.com>
Reply-To: billing@fastmailer.io
To: maria.rossi@example.org
Subject: Your receipt from Fastmailer #2231-4410
Date: Mon, 09 Mar 2026 11:02:41 +0000
Message-ID: <rcpt_1OqZ2d@stripe.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="r2"

--r2
Content-Type: text/plain; charset=UTF-8

Receipt from Fastmailer
Receipt #2231-4410
Amount paid: EUR 12.00
Date paid: March 9, 2026
Payment method: Visa - 4242

Pro plan (monthly)   EUR 12.00

If you have any questions, contact us at billing@fastmailer.io.
View invoice: https://invoice.stripe.com/i/acct_1Mx2/live_YWNjdF8x

--r2
Content-Type: text/html; charset=UTF-8

<html><body style="background:#f6f9fc"><table align="center" width="480" style="background:#fff;padding:24px">
<tr><td><h2>Receipt from Fastmailer</h2><p style="color:#8898aa">Receipt #2231-4410</p>
<table width="100%"><tr><td>Amount paid</td><td>Date paid</td><td>Payment method</td></tr>
<tr><td><b>EUR 12.00</b></td><td>March 9, 2026</td><td>Visa - 4242</td></tr></table>
<p>Pro plan (monthly) &mdash; EUR 12.00</p>
<p><a href="https://invoice.stripe.com/i/acct_1Mx2/live_YWNjdF8x">View invoice and payment details</a></p>
<p>If you have any questions, contact us at <a href="mailto:billing@fastmailer.io">billing@fastmailer.io</a>.</p>
<p style="font-size:12px;color:#8898aa">Something wrong with the email? <a href="https://invoice.stripe.com/i/acct_1Mx2/live_YWNjdF8x?view=browser">View it in your browser</a>.</p>
</td></tr></table></body></html>
--r2--
""",
    "ham/04-password-reset.eml": """\
From: GitHub <noreply@github.com>
To: alex.morgan@example.com
Subject: [GitHub] Please reset your password
Date: Wed, 11 Mar 2026 20:41:09 +0000
Message-ID: <reset-5c1e9f@github.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8

We heard that you lost your GitHub password. Sorry about that!

But don't worry! You can use the following button to reset your password:

https://github.com/password_reset/8c3f0a1e6b2d47d9

If you don't use this link within 3 hours, it will expire. To get a new password reset link, visit: https://github.com/password_reset

Thanks,
The GitHub Team
""",
    "ham/05-bank-statement.eml": """\
From: "Northfield Credit Union" <alerts@northfieldcu.org>
To: j.schmidt@example.net
Subject: Your March statement is ready
Date: Sat, 14 Mar 2026 07:30:00 +0000
Message-ID: <stmt.202603.88123@northfieldcu.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="s3"

--s3
Content-Type: text/plain; charset=UTF-8

Dear Jonas Schmidt,

Your statement for the account ending in 4821 is now available in Online Banking.
To view it, sign in at https://www.northfieldcu.org and select Statements.

For your security, we will never ask for your password or PIN by email.

Northfield Credit Union, Member Services

--s3
Content-Type: text/html; charset=UTF-8

<html><body><table width="600"><tr><td>
<img src="https://www.northfieldcu.org/img/logo.png" alt="Northfield Credit Union">
<p>Dear Jonas Schmidt,</p>
<p>Your statement for the account ending in 4821 is now available in Online Banking.
To view it, sign in at <a href="https://www.northfieldcu.org">www.northfieldcu.org</a> and select <b>Statements</b>.</p>
<p>For your security, we will never ask for your password or PIN by email.</p>
<p>Northfield Credit Union, Member Services</p>
</td></tr></table></body></html>
--s3--
""",
    "ham/06-event-promo.eml": """\
From: "Riverside Books" <hello@riversidebooks.co.uk>
To: office@example.org
Subject: Spring sale: 20% off all paperbacks this weekend
Date: Thu, 19 Mar 2026 10:00:00 +0000
Message-ID: <promo-2026-03-19@riversidebooks.co.uk>
List-Unsubscribe: <https://riversidebooks.co.uk/unsubscribe/5521>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="p4"

--p4
Content-Type: text/plain; charset=UTF-8

Spring sale at Riverside Books
20% off all paperbacks, Saturday and Sunday only, in store and online.
Use code SPRING20 at checkout: https://riversidebooks.co.uk/sale

Author evening: Thursday 26 March, 7pm, with a reading from "The Quiet Harbour".
Free entry, book your seat: https://riversidebooks.co.uk/events

Unsubscribe: https://riversidebooks.co.uk/unsubscribe/5521
Riverside Books, 4 Quay Street, Bristol BS1 4DB

--p4
Content-Type: text/html; charset=UTF-8

<html><body><div style="max-width:600px;margin:auto">
<img src="https://riversidebooks.co.uk/img/banner-spring.jpg" alt="Spring sale" width="600">
<h1 style="color:#2b5d34">20% off all paperbacks</h1>
<p>Saturday and Sunday only, in store and online. Use code <b>SPRING20</b> at checkout.</p>
<p><a href="https://riversidebooks.co.uk/sale" style="background:#2b5d34;color:#fff;padding:10px 20px">Shop the sale</a></p>
<h2>Author evening</h2><p>Thursday 26 March, 7pm, with a reading from <i>The Quiet Harbour</i>. Free entry.</p>
<p><a href="https://riversidebooks.co.uk/events">Book your seat</a></p>
<p style="font-size:11px">Riverside Books, 4 Quay Street, Bristol BS1 4DB &middot; <a href="https://riversidebooks.co.uk/unsubscribe/5521">Unsubscribe</a></p>
</div></body></html>
--p4--
""",
}


def write_messages(root: Path) -> Path:
    """Write the messages as ``root/ham/*.eml`` (the eval folder layout) and return ``root``."""
    for name, text in MESSAGES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    return root


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: commercial_ham.py OUTPUT_FOLDER")
    print(write_messages(Path(sys.argv[1])))
