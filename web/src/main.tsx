import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { currentSession, onSession } from "./api";
import { Console } from "./console/Console";
import { onLinkClick, usePath } from "./router";
import { Account, Erased } from "./screens/Account";
import { Conversation } from "./screens/Conversation";
import { Home } from "./screens/Home";
import { Layout } from "./screens/Layout";
import { Pet, Pets } from "./screens/Pets";
import { SignIn, SignInLink } from "./screens/SignIn";
import "./styles.css";

function App() {
  const path = usePath();
  const [session, setSession] = useState(currentSession());
  useEffect(() => onSession(() => setSession(currentSession())), []);

  if (path === "/console" || path.startsWith("/console/")) return <Console path={path} />;
  if (path === "/sign-in/link") return <SignInLink />;
  const erased = path.match(/^\/erased\/([0-9a-f-]{36})$/);
  if (erased) return <Erased id={erased[1]} />;
  const clinic = path.match(/^\/c\/([A-Za-z0-9._:-]+)\/?$/);
  if (!session) return <SignIn clinicId={clinic ? clinic[1] : undefined} />;

  let screen;
  const pet = path.match(/^\/pets\/([^/]+)$/);
  if (path === "/pets") screen = <Pets />;
  else if (pet) screen = <Pet patientId={decodeURIComponent(pet[1])} />;
  else if (path === "/conversation") screen = <Conversation />;
  else if (path === "/account" || path === "/notifications/preferences") screen = <Account />;
  else screen = <Home />;
  return <Layout path={path}>{screen}</Layout>;
}

document.addEventListener("click", onLinkClick);
render(<App />, document.getElementById("app")!);
