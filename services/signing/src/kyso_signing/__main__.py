from kyso_signing.bootstrap import build


def main() -> None:
    rt, app = build()
    rt.serve(app)


if __name__ == "__main__":
    main()
