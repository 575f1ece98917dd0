"""Convert temperatures between Celsius and Fahrenheit."""


def celsius_to_fahrenheit(celsius: float) -> float:
    """Water boils at 100 °C, which is 212 °F."""
    return celsius * 9 / 5 + 32


def fahrenheit_to_celsius(fahrenheit: float) -> float:
    return (fahrenheit - 32) * 5 / 9


if __name__ == "__main__":
    for c in (0, 37, 100):
        print(f"{c} °C = {celsius_to_fahrenheit(c):.1f} °F")
