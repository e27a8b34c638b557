# ruff: noqa: E501
# (message text keeps its real line lengths)
"""Hand-written test messages (none taken from any corpus), kept as text in code.

Each test process writes them once to a temporary folder (:func:`fixture_root`) and reads them
from there as ordinary ``.eml`` files, so tests exercise the same file paths users scan."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

MESSAGES: dict[str, str] = {
    "mail/alternative.eml": """\
From: "Alice Example" <Alice@Example.COM>
To: bob@example.org, "Carol C" <carol@example.net>
Cc: dave@example.com
Reply-To: replies@other.example
Return-Path: <Bounce@Example.com>
Sender: sender@example.com
Message-ID: <alt-1@example.com>
Date: Tue, 03 Mar 2026 10:00:00 +0100
Subject: Your account summary
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="ALT-BOUNDARY"

This is a multi-part message in MIME format.

--ALT-BOUNDARY
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 summary. Details at https://www.example.com/account?id=7.
Old link: hxxp://bad.example/login and also evil[.]example[.]net today.
--ALT-BOUNDARY
Content-Type: text/html; charset=utf-8

<html><head><title>Head title</title>
<style>.promo { color: red; }</style>
<script>var trackingSecret = "s3cr3t";</script></head>
<body><p>Hello <b>Bob</b>, here is your summary.</p>
<a href="https://login.example.net/account">Review your account</a>
<div style="display: none">cheap pills bonus words</div>
<form action="https://collect.example.org/submit" method="post"><input name="pw"></form>
<img src="https://img.example.com/pixel.gif" alt="">
</body></html>
--ALT-BOUNDARY--
""",
    "mail/broken_charset.eml": """\
From: a@example.com
To: b@example.org
Subject: charsets
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="CS"

--CS
Content-Type: text/plain; charset="x-no-such-charset"

Unknown charset: Café au lait
--CS
Content-Type: text/plain; charset=us-ascii

Declared ascii but 8-bit: naïve
--CS--
""",
    "mail/mbox_from.eml": """\
From sender@example.com Thu Mar  5 10:00:00 2026
From: Sender <sender@example.com>
To: rcpt@example.org
Subject: mbox envelope line first
Message-ID: <mbox-1@example.com>

Body after an mbox envelope line.
""",
    "mail/nested_rfc822.eml": """\
From: Forwarder <fwd@example.com>
To: rcpt@example.org
Subject: Fwd: inner message
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="OUTER"

--OUTER
Content-Type: text/plain; charset=us-ascii

See the forwarded message below.
--OUTER
Content-Type: message/rfc822

From: Inner Sender <inner@example.net>
To: someone@example.org
Subject: the inner one
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="INNER"

--INNER
Content-Type: text/plain; charset=us-ascii

Inner plain text with https://inner.example.net/path
--INNER
Content-Type: text/html; charset=us-ascii

<p>Inner html <a href="https://inner-html.example.net/x">inner anchor</a></p>
--INNER--

--OUTER--
""",
    "scan/corpus/ham/meeting.eml": """\
From: Jonas Schmidt <j.schmidt@example.net>
To: office@example.org
Cc: Maria Rossi <maria.rossi@example.org>
Subject: Re: quarterly planning meeting
Date: Thu, 05 Mar 2026 10:41:55 +0100
Message-ID: <a9d2e1@mail.example.net>
In-Reply-To: <77aa01@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello all,

thanks for the agenda. Thursday afternoon works for me; I will bring the
budget figures for the second quarter and the notes from the supplier call.
Could we also spend ten minutes on the office move?

Best regards,
Jonas
""",
    "scan/corpus/ham/newsletter.eml": """\
From: Greenleaf Gardens <news@greenleafgardens.org>
To: sam.lee@example.net
Subject: March in the garden: seed swap, pruning tips and a spring sale
Date: Wed, 04 Mar 2026 07:00:00 +0000
Message-ID: <nl-2026-03.81724@mail.greenleafgardens.org>
List-Unsubscribe: <https://click.greenleafgardens.org/unsubscribe?u=81724>, <mailto:unsubscribe@greenleafgardens.org>
List-Id: Greenleaf Gardens news <news.greenleafgardens.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="nl-boundary-81724"

--nl-boundary-81724
Content-Type: text/plain; charset=utf-8

Greenleaf Gardens - March newsletter

Seed swap this Saturday at the community hall, bring what you saved last
autumn. Our pruning guide for roses and fruit trees is online at
https://www.greenleafgardens.org/guides/pruning and the spring sale runs
until the end of the month: https://shop.greenleafgardens.org/spring

Read online: https://www.greenleafgardens.org/newsletter/2026-03
Unsubscribe: https://click.greenleafgardens.org/unsubscribe?u=81724
--nl-boundary-81724
Content-Type: text/html; charset=utf-8

<html><head><style>p { font-family: Georgia, serif; }</style></head><body>
<div style="display:none">Seed swap and spring sale</div>
<p><img src="https://cdn.greenleafgardens.org/img/logo.png" alt="Greenleaf Gardens"></p>
<h1>March in the garden</h1>
<p>Seed swap this Saturday at the community hall: bring what you saved last autumn and
take home something new. <a href="https://click.greenleafgardens.org/t/1?u=81724">Details and directions</a></p>
<p>Our pruning guide for roses and fruit trees is online at
<a href="https://click.greenleafgardens.org/t/2?u=81724">www.greenleafgardens.org/guides/pruning</a>.</p>
<p>The spring sale runs until the end of the month:
<a href="https://shop.greenleafgardens.org/spring">shop.greenleafgardens.org</a></p>
<p><a href="https://www.greenleafgardens.org/events">Events</a> |
<a href="https://www.greenleafgardens.org/blog">Blog</a> |
<a href="https://www.greenleafgardens.org/contact">Contact</a> |
<a href="https://www.greenleafgardens.org/newsletter/2026-03">Read online</a></p>
<p style="font-size:11px">You receive this because you subscribed at greenleafgardens.org.
<a href="https://click.greenleafgardens.org/unsubscribe?u=81724">Unsubscribe</a></p>
</body></html>
--nl-boundary-81724--
""",
    "scan/corpus/ham/personal_note.eml": """\
From: Maria Rossi <maria.rossi@example.org>
To: Sam Lee <sam.lee@example.net>
Subject: Saturday hike
Date: Tue, 03 Mar 2026 18:22:10 +0100
Message-ID: <3f1c9a72.hike@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hi Sam,

are we still on for the hike on Saturday? I can bring sandwiches and the
old map of the ridge trail. Would 9 o'clock at the station work for you?
If it rains we could go to the museum instead.

See you,
Maria
""",
    "scan/corpus/phish/bank_login.eml": """\
From: "Wells Fargo Online" <alerts@wf-secure-notice.com>
To: sam.lee@example.net
Subject: Urgent: unusual activity - confirm your identity
Date: Tue, 03 Mar 2026 02:30:00 +0000
Message-ID: <alert.7781@wf-secure-notice.com>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><body>
<p>Dear valued customer,</p>
<p>We detected unusual activity on your online banking. Your access has been suspended.
Confirm your identity by signing in and verifying your account password, PIN and
security questions. Failure to verify within 24 hours will result in account closure.</p>
<form action="http://198.51.100.23/wf/login.php" method="post">
User ID <input name="user"> Password <input type="password" name="pass">
<input type="submit" value="Verify account"></form>
<p><a href="http://198.51.100.23/wf/">wellsfargo.com</a></p>
</body></html>
""",
    "scan/corpus/phish/mailbox_quota.eml": """\
From: "Microsoft Outlook Team" <no-reply@mailbox-quota-admin.net>
To: sam.lee@example.net
Subject: Mailbox full - verify your account to keep receiving email
Date: Wed, 04 Mar 2026 11:05:00 +0000
Message-ID: <quota.3301@mailbox-quota-admin.net>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><body>
<p>Your mailbox has exceeded its storage quota. Incoming messages are on hold.</p>
<p>Verify your account and sign in with your email password to restore delivery,
otherwise your account will be deactivated and messages deleted.</p>
<p><a href="https://login.microsoftonline.com.quota-admin-verify.net/owa/">https://login.microsoftonline.com/</a></p>
<p>Microsoft Outlook Team</p>
</body></html>
""",
    "scan/corpus/phish/paypal_verify.eml": """\
From: "PayPal Security" <security@paypa1-support.com>
To: sam.lee@example.net
Subject: Your account has been limited - verify your account now
Date: Mon, 02 Mar 2026 09:14:00 +0000
Message-ID: <20260302091400.4471@paypa1-support.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="pp-0001"

--pp-0001
Content-Type: text/plain; charset=utf-8

Dear customer, we noticed unusual sign-in activity on your PayPal account.
Your account has been limited. Verify your account within 24 hours or it will
be permanently suspended.
--pp-0001
Content-Type: text/html; charset=utf-8

<html><body>
<p>Dear customer,</p>
<p>We noticed unusual sign-in activity on your PayPal account. Your account has been
limited. To restore full access, please verify your account and confirm your password
and card details within 24 hours, or your account will be permanently suspended.</p>
<p><a href="http://paypal.com.account-verify-login.net/signin?id=8812">https://www.paypal.com/verify</a></p>
<p>PayPal Security Team</p>
</body></html>
--pp-0001--
""",
    "scan/corpus/spam/lottery.eml": """\
From: International Lottery Board <claims@lotto-winners-intl.info>
Reply-To: claims.agent2026@gmail.com
To: undisclosed-recipients:;
Subject: CONGRATULATIONS!!! You have WON $1,500,000 USD
Date: Mon, 02 Mar 2026 05:40:00 +0000
Message-ID: <win.99121@lotto-winners-intl.info>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

CONGRATULATIONS!!! Your email address has won the sum of $1,500,000 USD in
the international online lottery draw. To claim your prize money send your
full name, address, phone number and bank details to our claims agent.
Winners must claim within 7 days. Act now, this is 100% guaranteed money!
Claim fee of $250 must be paid by western union before transfer of funds.
""",
    "scan/corpus/spam/pills.eml": """\
From: Pharmacy Deals <deals@cheap-meds-online.biz>
To: sam.lee@example.net
Subject: CHEAP MEDS!!! 90% OFF - no prescription needed
Date: Mon, 02 Mar 2026 03:12:44 +0000
Message-ID: <8823.1172@cheap-meds-online.biz>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><body><h1>BEST PRICES ON MEDS!!!</h1>
<p>Viagra, Cialis, weight loss pills - 90% OFF - NO PRESCRIPTION NEEDED!!!
Discreet worldwide shipping. Order now and get FREE pills with every order!</p>
<p><a href="http://cheap-meds-online.biz/order?r=1172">ORDER NOW</a></p>
<p>Limited time offer, buy cheap meds today. $$$ save money $$$</p>
</body></html>
""",
    "scan/corpus/spam/work_from_home.eml": """\
From: Income Team <team@easy-cash-daily.top>
To: sam.lee@example.net
Subject: Make $5000 a week from home - guaranteed!!!
Date: Mon, 02 Mar 2026 06:01:12 +0000
Message-ID: <cash.5512@easy-cash-daily.top>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Make money fast!!! Earn $5000 a week working from home, no experience
needed, 100% guaranteed income. Thousands of people are already earning
cash with our secret system. Click here to start earning today:
https://bit.ly/3EasyCash
Limited spots available - act now and get rich quick!!!
""",
    "scan/personal_reply.eml": """\
From: Sam Lee <sam.lee@example.net>
To: Maria Rossi <maria.rossi@example.org>
Subject: Re: Saturday hike
Date: Tue, 03 Mar 2026 20:05:41 +0100
Message-ID: <b81d0c44.reply@example.net>
In-Reply-To: <3f1c9a72.hike@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hi Maria,

yes, still on! 9 at the station is perfect. I'll bring coffee and the
rain jackets just in case. My sister might join us if that's okay.

Sam
""",
    "scan/phish_apple_id.eml": """\
From: "Apple Support" <no-reply@appleid-verify-center.com>
To: alex.morgan@example.com
Subject: Action required: verify your account to avoid suspension
Date: Fri, 06 Mar 2026 04:12:09 +0000
Message-ID: <c0ffee.5120@appleid-verify-center.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="apl-77"

--apl-77
Content-Type: text/plain; charset=utf-8

Dear customer, your Apple ID was used to sign in on an unknown device.
For your protection your account has been locked. Verify your account
within 48 hours to keep access to iCloud, your photos and your payments.
--apl-77
Content-Type: text/html; charset=utf-8

<html><body>
<p>Dear customer,</p>
<p>Your Apple ID was used to sign in on an unknown device. For your protection your
account has been locked. Verify your account within 48 hours by confirming your
password and payment details, or your account will be permanently disabled.</p>
<p><a href="http://apple.com.id-verify-secure.net/appleid/unlock?c=5120">https://appleid.apple.com</a></p>
<p>Apple Support</p>
</body></html>
--apl-77--
""",
}


def write_messages(root: Path) -> Path:
    """Write every message under ``root`` (``mail/...``, ``scan/...``) and return ``root``."""
    for name, text in MESSAGES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    return root


_root: Path | None = None


def fixture_root() -> Path:
    """The folder holding every message as a file, written once per process, removed at exit."""
    global _root
    if _root is None:
        _root = write_messages(Path(tempfile.mkdtemp(prefix="postwise-fixtures-")))
        atexit.register(shutil.rmtree, _root, True)
    return _root
