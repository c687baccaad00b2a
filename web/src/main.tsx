import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { currentSession, onSession } from "./api";
import { Console } from "./console/Console";
import { lazy } from "./lazy";
import { onLinkClick, usePath } from "./router";
import { Account, Erased } from "./screens/Account";
import { Conversation } from "./screens/Conversation";
import { Forms, FormScreen } from "./screens/Forms";
import { Home } from "./screens/Home";
import { Layout } from "./screens/Layout";
import { Pet, Pets } from "./screens/Pets";
import { SignIn, SignInLink } from "./screens/SignIn";
import "./styles.css";

const Book = lazy(() => import("./screens/Book").then((m) => m.Book));

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
  const form = path.match(/^\/forms\/([0-9a-f-]{36})$/);
  if (path === "/pets") screen = <Pets />;
  else if (pet) screen = <Pet patientId={decodeURIComponent(pet[1])} />;
  else if (path === "/conversation") screen = <Conversation />;
  else if (path === "/book") screen = <Book />;
  else if (path === "/forms") screen = <Forms />;
  else if (form) screen = <FormScreen assignmentId={form[1]} />;
  else if (path === "/account" || path === "/notifications/preferences") screen = <Account />;
  else screen = <Home />;
  return <Layout path={path}>{screen}</Layout>;
}

document.addEventListener("click", onLinkClick);
render(<App />, document.getElementById("app")!);
