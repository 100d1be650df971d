"""Weather through a provider interface. No network is assumed: with no provider configured the
assistant says so. `OpenMeteoProvider` speaks the Open-Meteo API format (geocoding `/v1/search`,
daily forecast `/v1/forecast`) at a configurable URL."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Protocol

import httpx

from rivulet.dialog import hints
from rivulet.dialog.parse import parse_date, say_date
from rivulet.dialog.settings import DialogSettings
from rivulet.dialog.skills.base import IntentSpec, Outcome, Skill, SlotSpec, TurnContext

log = logging.getLogger(__name__)

# WMO weather interpretation codes (as Open-Meteo reports them).
WMO = {
    0: "clear skies",
    1: "mostly clear skies",
    2: "partly cloudy skies",
    3: "overcast skies",
    45: "fog",
    48: "freezing fog",
    51: "light drizzle",
    53: "drizzle",
    55: "heavy drizzle",
    56: "freezing drizzle",
    57: "freezing drizzle",
    61: "light rain",
    63: "rain",
    65: "heavy rain",
    66: "freezing rain",
    67: "freezing rain",
    71: "light snow",
    73: "snow",
    75: "heavy snow",
    77: "snow grains",
    80: "rain showers",
    81: "rain showers",
    82: "violent rain showers",
    85: "snow showers",
    86: "heavy snow showers",
    95: "thunderstorms",
    96: "thunderstorms with hail",
    99: "thunderstorms with hail",
}


@dataclass
class Forecast:
    place: str
    day: dt.date
    condition: str
    t_max: float
    t_min: float
    unit: str = "°C"
    precipitation_probability: int | None = None


class PlaceNotFound(Exception):
    pass


class ProviderError(Exception):
    pass


class WeatherProvider(Protocol):
    async def forecast(self, place: str, day: dt.date) -> Forecast: ...

    async def close(self) -> None: ...


class OpenMeteoProvider:
    def __init__(self, forecast_url: str, geocoding_url: str = "", timeout_s: float = 3.0) -> None:
        self.forecast_url = forecast_url
        self.geocoding_url = geocoding_url or re.sub(r"/forecast/?$", "/search", forecast_url)
        self.client = httpx.AsyncClient(timeout=timeout_s)

    async def _get(self, url: str, params: dict) -> dict:
        try:
            response = await self.client.get(url, params=params)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderError(f"{url}: {exc}") from exc

    async def forecast(self, place: str, day: dt.date) -> Forecast:
        found = await self._get(
            self.geocoding_url, {"name": place, "count": 1, "language": "en", "format": "json"}
        )
        results = found.get("results") or []
        if not results:
            raise PlaceNotFound(place)
        where = results[0]
        data = await self._get(
            self.forecast_url,
            {
                "latitude": where["latitude"],
                "longitude": where["longitude"],
                "daily": "weather_code,temperature_2m_max,temperature_2m_min,precipitation_probability_max",
                "timezone": where.get("timezone") or "auto",
                "start_date": day.isoformat(),
                "end_date": day.isoformat(),
            },
        )
        try:
            daily = data["daily"]
            i = daily["time"].index(day.isoformat())
            precip = daily.get("precipitation_probability_max")
            return Forecast(
                place=where.get("name", place),
                day=day,
                condition=WMO.get(int(daily["weather_code"][i]), "mixed weather"),
                t_max=float(daily["temperature_2m_max"][i]),
                t_min=float(daily["temperature_2m_min"][i]),
                unit=data.get("daily_units", {}).get("temperature_2m_max", "°C"),
                precipitation_probability=int(precip[i]) if precip and precip[i] is not None else None,
            )
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            raise ProviderError(f"unexpected forecast response: {exc}") from exc

    async def close(self) -> None:
        await self.client.aclose()


def _place(text: str, ctx: TurnContext) -> str | None:
    value = re.sub(r"^(?:(?:in|at|for|near)\s+)+", "", text.strip(), flags=re.I).strip(" .,!?")
    return value or None


def _say_temp(value: float, unit: str) -> str:
    return f"{round(value)} degrees" + (" Fahrenheit" if "F" in unit else "")


class Weather(Skill):
    name = "weather"
    intents = {
        "GetWeather": IntentSpec(
            required=[
                SlotSpec(
                    "place",
                    "For which place?",
                    labels=("city", "state", "country", "geographic_poi"),
                    parse=_place,
                    hints=hints.CITIES,
                )
            ],
            optional=[
                SlotSpec("timeRange", ""),
                SlotSpec("condition_description", ""),
                SlotSpec("condition_temperature", ""),
            ],
            date_slot="timeRange",
            place_slot="place",
            describe="checking the weather",
        )
    }

    def __init__(self, provider: WeatherProvider | None) -> None:
        self.provider = provider

    async def act(self, intent: str, slots: dict[str, str], ctx: TurnContext) -> Outcome:
        place = slots["place"]
        when = slots.get("timeRange", "")
        day = parse_date(when, ctx.today) if when else ctx.today
        day = day or ctx.today
        asked = {"place": place, "date": day.isoformat()}
        if self.provider is None:
            return Outcome(
                "I can't check the weather: no weather service is configured for this assistant.",
                "weather.no_provider",
                asked,
            )
        try:
            forecast = await self.provider.forecast(place, day)
        except PlaceNotFound:
            return Outcome(f"I couldn't find a place called {place}.", "weather.unknown_place", asked)
        except ProviderError as exc:
            log.warning("weather provider failed: %s", exc)
            return Outcome(
                "The weather service isn't answering right now, sorry.", "weather.unavailable", asked
            )
        said_day = say_date(day, ctx.today)
        text = (
            f"{said_day.capitalize()} in {forecast.place}: {forecast.condition}, "
            f"between {_say_temp(forecast.t_min, forecast.unit)} "
            f"and {_say_temp(forecast.t_max, forecast.unit)}."
        )
        if forecast.precipitation_probability is not None and forecast.precipitation_probability >= 30:
            text += f" {forecast.precipitation_probability} percent chance of rain."
        result = {
            **asked,
            "place": forecast.place,
            "condition": forecast.condition,
            "t_max": f"{forecast.t_max:g}",
            "t_min": f"{forecast.t_min:g}",
        }
        return Outcome(text, "weather.forecast", result)

    async def close(self) -> None:
        if self.provider:
            await self.provider.close()


def create(settings: DialogSettings) -> Skill:
    provider = None
    if settings.dialog_weather_url:
        provider = OpenMeteoProvider(
            settings.dialog_weather_url, settings.dialog_geocoding_url, settings.dialog_weather_timeout_s
        )
    return Weather(provider)
