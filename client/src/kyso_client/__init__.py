"""kyso client SDK: what the VNeID app, the kyso app and the SmartOTP app do, over kyso's HTTP APIs."""
