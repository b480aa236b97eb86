"""``TypedDict``s for the request payloads users write by hand: devices, media, specs.

Why TypedDicts and not classes
    Every command takes the wire's own JSON objects (the guide's code passes dict
    literals), and the builders (``Device.phone``, ``Media.tts``...) return them too,
    so a payload stays a plain ``dict`` that can be logged, stored or edited. A
    ``TypedDict`` adds nothing at run time; it lets mypy and pyright check the keys
    of a payload that user code annotates (``menu: CollectSpec = {...}``): a
    misspelled key (``"digit_timout"``) or a missing required one is flagged before
    the call is ever placed.

Why the commands also take any ``Mapping``
    The signatures say ``MediaItem | Mapping[str, Any]`` (and so on): programs
    written for the guide pass unannotated dicts, flat media items
    (``{"type": "tts", "text": ...}``) and keys this module does not list (the
    server accepts more than the reference documents), and all of that keeps
    working. The price: a dict literal written inline in a call is not checked
    against these shapes (it is a ``Mapping`` either way); annotate it, or use a
    builder, to have its keys checked.

The shapes are the reference's (§10); ``total=False`` with ``Required`` keys where
the reference says a key is needed. A key that is a Python keyword (``"from"``)
needs the functional ``TypedDict`` syntax: it comes from a small base.

This module deliberately does not use ``from __future__ import annotations``: the
runtime ``__required_keys__`` of a TypedDict are only right when ``Required`` is not
a string.
"""

from typing import Literal, Required, TypeAlias, TypedDict

__all__ = [
    "AILanguage",
    "AIPrompt",
    "AudioMedia",
    "AudioParams",
    "CollectSpec",
    "DetectSpec",
    "DeviceSpec",
    "DigitDetect",
    "DigitDetectParams",
    "DigitsSpec",
    "FaxDetect",
    "FaxDetectParams",
    "MachineDetect",
    "MachineDetectParams",
    "MediaItem",
    "PhoneDevice",
    "PhoneParams",
    "RTPDevice",
    "RTPParams",
    "RecordAudio",
    "RingtoneMedia",
    "RingtoneParams",
    "SilenceMedia",
    "SilenceParams",
    "SipDevice",
    "SipHeaderItem",
    "SipParams",
    "SpeechSpec",
    "TTSMedia",
    "TTSParams",
    "TapDevice",
    "TapParams",
    "TapSpec",
    "WSDevice",
    "WSParams",
    "WebRTCDevice",
    "WebRTCParams",
]

# -- Media (§10.1): play, play_and_collect, connect's ringback ---------------------------


class TTSParams(TypedDict, total=False):
    """``params`` of a TTS media item: the text, and optionally how it is spoken."""

    text: Required[str]
    language: str
    #: ``"male"`` or ``"female"``.
    gender: str
    #: A provider-specific voice name (e.g. ``"Polly.Joanna"``).
    voice: str


class TTSMedia(TypedDict):
    """A text-to-speech media item: ``{"type": "tts", "params": {"text": ...}}``."""

    type: Literal["tts"]
    params: TTSParams


class AudioParams(TypedDict):
    """``params`` of an audio media item: the file's URL."""

    url: str


class AudioMedia(TypedDict):
    """An audio file media item: ``{"type": "audio", "params": {"url": ...}}``."""

    type: Literal["audio"]
    params: AudioParams


class SilenceParams(TypedDict):
    """``params`` of a silence media item: its length in seconds."""

    duration: float


class SilenceMedia(TypedDict):
    """A pause: ``{"type": "silence", "params": {"duration": seconds}}``."""

    type: Literal["silence"]
    params: SilenceParams


class RingtoneParams(TypedDict, total=False):
    """``params`` of a ringtone media item: a country code, and seconds to ring."""

    #: A country code: ``"us"``, ``"uk"``, ``"de"``... (reference §10.1).
    name: Required[str]
    duration: float


class RingtoneMedia(TypedDict):
    """A ringtone (ringback) media item: ``{"type": "ringtone", "params": {"name": ...}}``."""

    type: Literal["ringtone"]
    params: RingtoneParams


#: One media item in the wire's shape, as ``Media.tts``/``audio``/``silence``/
#: ``ringtone`` build it.
MediaItem: TypeAlias = TTSMedia | AudioMedia | SilenceMedia | RingtoneMedia

# -- Devices (§10.2): dial, connect, refer ------------------------------------------------


class PhoneParams(TypedDict, total=False):
    """``params`` of a phone device: E.164 numbers, and the leg's limits."""

    to_number: Required[str]
    #: The caller id shown to the callee; one of your numbers.
    from_number: str
    #: Seconds the leg may ring.
    timeout: float
    #: Seconds the leg may last.
    max_duration: int
    call_state_url: str
    call_state_events: list[str]


class PhoneDevice(TypedDict):
    """A phone number to call: ``{"type": "phone", "params": {"to_number": ...}}``."""

    type: Literal["phone"]
    params: PhoneParams


class SipHeaderItem(TypedDict):
    """One SIP header as the wire carries it: ``{"name": "X-Account", "value": "42"}``."""

    name: str
    value: str


#: The keys that are Python keywords, in the functional syntax: ``SipParams`` and
#: ``WebRTCParams`` add the rest (and their docstrings) with the class syntax.
_From = TypedDict("_From", {"from": str}, total=False)


class SipParams(_From, total=False):
    """``params`` of a SIP device: URIs, custom headers, codecs.

    ``"from"`` (the caller's URI) is a key too; ``username``/``password`` are for
    ``refer``.
    """

    to: Required[str]
    from_name: str
    timeout: float
    max_duration: int
    headers: list[SipHeaderItem]
    codecs: list[str]
    webrtc_media: bool
    username: str
    password: str
    call_state_url: str
    call_state_events: list[str]


class SipDevice(TypedDict):
    """A SIP endpoint: ``{"type": "sip", "params": {"to": "sip:...", "from": "sip:..."}}``."""

    type: Literal["sip"]
    params: SipParams


class WebRTCParams(_From, total=False):
    """``params`` of a WebRTC device: the resource to reach (and ``"from"``), codecs."""

    to: Required[str]
    timeout: float
    codecs: list[str]


class WebRTCDevice(TypedDict):
    """A WebRTC endpoint: ``{"type": "webrtc", "params": {"to": ..., "from": ...}}``."""

    type: Literal["webrtc"]
    params: WebRTCParams


#: One device of ``dial``/``connect``, as ``Device.phone``/``Device.sip`` build it.
DeviceSpec: TypeAlias = PhoneDevice | SipDevice | WebRTCDevice

# -- Collect (§10.3) ------------------------------------------------------------------------


class DigitsSpec(TypedDict, total=False):
    """DTMF input: at most ``max`` digits, ended by a terminator or a pause."""

    max: Required[int]
    #: Keys that end the input, e.g. ``"#"``.
    terminators: str
    #: Seconds of silence between digits that end the input (default 5.0).
    digit_timeout: float


class SpeechSpec(TypedDict, total=False):
    """Speech input: when it ends, the language, and words to expect."""

    end_silence_timeout: float
    speech_timeout: float
    language: str
    hints: list[str]
    #: ``"Deepgram"`` or ``"Google"``.
    engine: str


class CollectSpec(TypedDict, total=False):
    """The ``collect`` of ``play_and_collect``: digits and/or speech, and the timers."""

    #: Seconds to wait for the first input (default 4.0).
    initial_timeout: float
    digits: DigitsSpec
    speech: SpeechSpec
    partial_results: bool
    continuous: bool
    send_start_of_input: bool
    start_input_timers: bool


# -- Record (§10.4) -------------------------------------------------------------------------


class RecordAudio(TypedDict, total=False):
    """The ``audio`` of ``record``: format, direction, and when the recording ends."""

    beep: bool
    #: ``"mp3"`` (default) or ``"wav"``.
    format: str
    stereo: bool
    #: ``"listen"``, ``"speak"`` (default) or ``"both"``.
    direction: str
    initial_timeout: float
    end_silence_timeout: float
    terminators: str
    input_sensitivity: float


# -- Detect (§10.5) -------------------------------------------------------------------------


class MachineDetectParams(TypedDict, total=False):
    """Tuning of the answering-machine detector (the reference's defaults apply)."""

    initial_timeout: float
    end_silence_timeout: float
    machine_ready_timeout: float
    machine_voice_threshold: float
    machine_words_threshold: int
    detect_interruptions: bool
    detect_message_end: bool


class MachineDetect(TypedDict, total=False):
    """Human or machine: ``{"type": "machine", "params": {...}}``."""

    type: Required[Literal["machine"]]
    params: MachineDetectParams


class FaxDetectParams(TypedDict, total=False):
    """Which fax tone to listen for."""

    #: ``"CED"`` or ``"CNG"``.
    tone: str


class FaxDetect(TypedDict, total=False):
    """A fax tone: ``{"type": "fax", "params": {"tone": "CED"}}``."""

    type: Required[Literal["fax"]]
    params: FaxDetectParams


class DigitDetectParams(TypedDict, total=False):
    """Which DTMF digits count."""

    digits: str


class DigitDetect(TypedDict, total=False):
    """DTMF digits: ``{"type": "digit", "params": {"digits": "0123456789#*"}}``."""

    type: Required[Literal["digit"]]
    params: DigitDetectParams


#: The ``detect`` of ``call.detect``.
DetectSpec: TypeAlias = MachineDetect | FaxDetect | DigitDetect

# -- Tap (§10.6) ----------------------------------------------------------------------------


class TapParams(TypedDict, total=False):
    """Which side of the call to copy."""

    #: ``"listen"``, ``"speak"`` or ``"both"``.
    direction: str


class TapSpec(TypedDict):
    """The ``tap`` of ``call.tap``: the server rejects one without ``params``."""

    type: Literal["audio"]
    params: TapParams


class RTPParams(TypedDict, total=False):
    """Where an RTP tap sends media: an IPv4 address and a port."""

    addr: Required[str]
    port: Required[int]
    codec: str
    ptime: int


class RTPDevice(TypedDict):
    """An RTP tap target: ``{"type": "rtp", "params": {"addr": ..., "port": ...}}``."""

    type: Literal["rtp"]
    params: RTPParams


class WSParams(TypedDict, total=False):
    """Where a WebSocket tap sends media."""

    uri: Required[str]
    codec: str
    rate: int


class WSDevice(TypedDict):
    """A WebSocket tap target: ``{"type": "ws", "params": {"uri": "wss://..."}}``."""

    type: Literal["ws"]
    params: WSParams


#: The ``device`` of ``call.tap``.
TapDevice: TypeAlias = RTPDevice | WSDevice

# -- AI (§11.15) ----------------------------------------------------------------------------


class AIPrompt(TypedDict, total=False):
    """The ``prompt`` (or ``post_prompt``) of ``call.ai``."""

    text: Required[str]
    temperature: float
    top_p: float
    confidence: float
    barge_confidence: float
    presence_penalty: float
    frequency_penalty: float
    model: str


class AILanguage(TypedDict, total=False):
    """One entry of ``call.ai(languages=[...])``."""

    name: str
    code: str
    voice: str
