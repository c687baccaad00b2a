"""Wiring: the runtime, the unit of work on notify's repositories, the consumers, the delivery
channels and their dispatcher, and what is published. Tests pass their own pieces (a token verifier, a
fake unit of work, providers)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from petportal_runtime.auth import TokenVerifier
from petportal_runtime.broker import bind, document_publisher, on, subscribe_events
from petportal_runtime.container import Container
from petportal_runtime.internal import internal_headers
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import (
    AppointmentBooked,
    AppointmentBookingRejected,
    AppointmentCancelled,
    AppointmentRequestAnswered,
    AppointmentUpserted,
    ClientDataErased,
    ClientErasureRequested,
    ClientUpserted,
    ClinicRegistered,
    ClinicSettingsChanged,
    MessageRead,
    MessageReceived,
    PatientUpserted,
    RefillRequestDecided,
    ReminderSent,
    ServiceReminderCompleted,
    ServiceReminderUpserted,
    SmsOptedIn,
    SmsOptedOut,
    SmsReceived,
    topics,
)

from .adapters.channels import SmtpEmail, TwilioSms
from .adapters.identity_links import IdentityLinks
from .adapters.repository import sql_repositories
from .domain.delivery import Channel, Provider
from .domain.stops import PhoneDigests
from .entrypoints import handlers
from .service_layer import deliveries, services
from .service_layer.unit_of_work import NotifyRepositories, NotifyUnitOfWork
from .settings import NotifySettings


@dataclass
class Notify(Container[NotifySettings, NotifyRepositories]):
    providers: Mapping[Channel, Provider]
    dispatcher: deliveries.Dispatcher
    phones: PhoneDigests  # keys the hashes of the numbers kept as stopped after an erasure


def make_providers(settings: NotifySettings) -> dict[Channel, Provider]:
    """SMTP and Twilio's API as the settings name them (`make run`'s local sinks outside production)."""
    smtp = settings.smtp()
    api_base, account_sid = settings.twilio_api()
    return {
        "email": SmtpEmail(
            host=smtp.host,
            port=smtp.port,
            mail_from=settings.mail_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=smtp.security == "starttls",
            use_tls=smtp.security == "tls",
            timeout=settings.send_timeout_seconds,
        ),
        "sms": TwilioSms(
            api_base=api_base,
            account_sid=account_sid,
            auth_token=settings.twilio_send_token,
            status_callback=f"{settings.public_base_url}/webhooks/sms/status",
            timeout=settings.send_timeout_seconds,
            connections=settings.send_concurrency,
        ),
    }


def bootstrap(
    settings: NotifySettings | None = None,
    *,
    token_verifier: TokenVerifier | None = None,
    unit_of_work: Callable[[], NotifyUnitOfWork] | None = None,
    providers: Mapping[Channel, Provider] | None = None,
    dispatch: bool = True,
    reminder_links: deliveries.ReminderLinks | None = None,
) -> Notify:
    """`dispatch=False` leaves sending to the caller (`dispatcher.dispatch_once()`, in tests);
    `reminder_links` gives a reminder's sign-in link (by default identity's internal API)."""
    settings = settings or NotifySettings()
    runtime = ServiceRuntime(settings, token_verifier=token_verifier)
    uow = unit_of_work or (lambda: runtime.unit_of_work(sql_repositories))
    providers = providers if providers is not None else make_providers(settings)
    base = settings.public_base_url.rstrip("/")
    dispatcher = deliveries.Dispatcher(
        uow,
        providers,
        link=lambda clinic_id: f"{base}/c/{clinic_id}",
        retry=settings.retry_policy(),
        batch=settings.dispatch_batch,
        concurrency=settings.send_concurrency,
        send_timeout=settings.send_timeout_seconds,
        interval=settings.dispatch_interval_seconds,
        reminder_links=reminder_links or _identity_links(runtime, settings),
    )
    phones = settings.phone_digests()
    notify = Notify(settings, runtime, uow, providers, dispatcher, phones)
    policy = settings.reminder_policy()
    batch = timedelta(seconds=settings.notification_batch_seconds)
    subscribe_events(
        runtime.broker,
        settings,
        [topics.SYNC, topics.MESSAGING, topics.IDENTITY, topics.PETS],
        consumer=handlers.CONSUMER,
        handlers=[
            on(ClinicRegistered, bind(handlers.register_clinic, uow)),
            on(ClientUpserted, bind(partial(handlers.record_contact, phones=phones), uow)),
            on(ClientErasureRequested, bind(partial(handlers.erase_client, phones=phones), uow)),
            on(PatientUpserted, bind(handlers.applying(services.record_patient), uow)),
            on(ClinicSettingsChanged, bind(handlers.applying(services.clinic_settings), uow)),
            on(
                ServiceReminderUpserted,
                bind(handlers.applying(partial(deliveries.service_reminder, policy=policy)), uow),
            ),
            on(ServiceReminderCompleted, bind(handlers.applying(deliveries.service_reminder_closed), uow)),
            on(
                AppointmentUpserted,
                bind(handlers.applying(partial(deliveries.appointment, policy=policy)), uow),
            ),
            on(AppointmentCancelled, bind(handlers.applying(deliveries.appointment_cancelled), uow)),
            on(
                MessageReceived,
                bind(handlers.applying(partial(deliveries.new_message, batch=batch)), uow),
            ),
            on(MessageRead, bind(handlers.applying(deliveries.messages_read), uow)),
            on(AppointmentRequestAnswered, bind(handlers.applying(deliveries.request_answered), uow)),
            on(RefillRequestDecided, bind(handlers.applying(deliveries.refill_decided), uow)),
            on(AppointmentBooked, bind(handlers.applying(deliveries.booking_answered), uow)),
            on(AppointmentBookingRejected, bind(handlers.applying(deliveries.booking_answered), uow)),
        ],
    )
    document_publisher(runtime.broker, topics.NOTIFY, [SmsOptedOut, SmsOptedIn, SmsReceived, ReminderSent])
    document_publisher(runtime.broker, topics.ERASURE, [ClientDataErased])
    if dispatch:
        runtime.background.append(dispatcher.run)
    runtime.closing.extend(provider.close for provider in providers.values())
    services.count_from_zero()
    deliveries.count_from_zero()
    return notify


def _identity_links(runtime: ServiceRuntime, settings: NotifySettings) -> deliveries.ReminderLinks:
    links = IdentityLinks(settings.identity_url, internal_headers(settings))
    runtime.closing.append(links.close)
    return links.links
